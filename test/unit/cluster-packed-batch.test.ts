import { describe, expect, it } from 'vitest'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import mqtt from 'mqtt-packet'
import { FramedRecord, packEntries, PackedBatchError, PACKED_VERSION_NO_FRAMES, unpackEntries, unpackRecords, type PackedEntry } from '../../src/cluster/packed-batch.js'
import { encodePlainPublish } from '../../worker/encode.js'

const unpack = (buf: Buffer): PackedEntry[] => {
  const out: PackedEntry[] = []
  unpackEntries(buf, (e) => out.push(e))
  return out
}

const plain: BrokerMessage = { topic: 'a/b', payload: Buffer.from('hello'), qos: 0, retain: false, origin: 'w1', publisherId: 'c1' }
const full: BrokerMessage = {
  topic: 'ünï/côdé/🙂',
  payload: Buffer.alloc(70_000, 7),
  qos: 2,
  retain: true,
  origin: 'w2',
  publisherId: '',
  expiresAt: 1_790_000_000_123,
  properties: {
    payloadFormatIndicator: false,
    contentType: '',
    responseTopic: 'r/é',
    correlationData: Buffer.from([0, 1, 2]),
    userProperties: { k: ['v1', 'v2'], 'ü': 'x' },
  },
}

describe('packed PublishBatch records', () => {
  it('round-trip every field, in order, including empty strings, UTF-8, large payloads and repeated user properties', () => {
    const entries: PackedEntry[] = [
      { msg: plain, msgId: 0, groups: [], normal: true },
      { msg: full, msgId: 2 ** 40 + 5, groups: ['g/a/+', 'h/#'], normal: false },
      { msg: { ...plain, qos: 1, properties: { payloadFormatIndicator: true } }, msgId: 9, groups: [], normal: true },
    ]
    const got = unpack(packEntries(entries))
    expect(got).toEqual(entries.map((e) => ({ ...e, frame: null })))
    expect(got[1]!.msg.properties!.contentType).toBe('')
    expect(got[0]!.msg).not.toHaveProperty('expiresAt')
    expect(got[0]!.msg).not.toHaveProperty('properties')
  })

  it('writes each distinct string once per batch and gives the receiver one string object per table entry', () => {
    const many: PackedEntry[] = Array.from({ length: 100 }, (_, i) => ({ msg: { ...plain, topic: `t/${i % 2}`, qos: 1 }, msgId: i + 1, groups: [], normal: true }))
    const buf = packEntries(many)
    // table: 't/0', 't/1', 'w1', 'c1'; each record: flags, msg_id, 3 references, payload, group count
    expect(buf.length).toBe(3 + (2 + 3) * 2 + (2 + 2) * 2 + 100 * (1 + 6 + 6 + 4 + 5 + 2))
    const got = unpack(buf)
    expect(got.map((e) => e.msgId)).toEqual(many.map((e) => e.msgId))
    expect(got[0]!.msg.topic).toBe('t/0')
    expect(got[3]!.msg.topic).toBe('t/1')
  })

  it('refuses a batch of another packing revision (revision 2 started with a record, no version byte)', () => {
    const rev2 = Buffer.from([0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x61])
    expect(() => unpack(rev2)).toThrow(/version 8/)
  })

  it('an empty batch is zero bytes; truncated bytes are refused', () => {
    expect(packEntries([]).length).toBe(0)
    const buf = packEntries([{ msg: plain, msgId: 1, groups: ['g/x'], normal: true }])
    for (const cut of [1, 2, 7, buf.length - 1]) expect(() => unpack(buf.subarray(0, cut))).toThrow(PackedBatchError)
  })

  describe('PUBLISH frames (version 4)', () => {
    const v3Frame = Buffer.from(mqtt.generate({ cmd: 'publish', topic: plain.topic, payload: plain.payload, qos: 0, retain: false, dup: false }))
    const v5Frame = encodePlainPublish(plain.topic, plain.payload, 0, false, true, 0)

    it('carry a 3.1.1 or 5.0 frame in place of the payload; the payload is a view of the received frame', () => {
      const entries: PackedEntry[] = [
        { msg: plain, msgId: 0, groups: [], normal: true, frame: v3Frame },
        { msg: plain, msgId: 0, groups: [], normal: true, frame: v5Frame },
        { msg: { ...plain, qos: 1 }, msgId: 7, groups: [], normal: true, frame: null },
      ]
      const buf = packEntries(entries)
      expect(buf[0]).toBe(4)
      const got = unpack(buf)
      // views, not copies, and Buffers (not bare Uint8Arrays): sockets, the store and the encoder take them
      expect(got.every((e) => Buffer.isBuffer(e.msg.payload) && (e.frame === null || Buffer.isBuffer(e.frame)))).toBe(true)
      expect(got.map((e) => e.frame)).toEqual([v3Frame, v5Frame, null])
      for (const e of got.slice(0, 2)) {
        expect(e.msg.payload).toEqual(plain.payload)
        expect(e.msg.payload.buffer).toBe(buf.buffer)
        expect(e.frame!.buffer).toBe(buf.buffer)
      }
      expect(got[2]!.msg.payload).toEqual(plain.payload)
    })

    it('are read as FramedRecords (no message built) when plain QoS 0 without groups; entry() builds what unpackEntries gives', () => {
      const entries: PackedEntry[] = [
        { msg: plain, msgId: 0, groups: [], normal: true, frame: v3Frame },
        { msg: { ...plain, publisherId: 'c2' }, msgId: 0, groups: [], normal: false, frame: v5Frame },
        { msg: plain, msgId: 0, groups: ['g/a/b'], normal: true, frame: v3Frame },
        { msg: { ...plain, qos: 1 }, msgId: 7, groups: [], normal: true, frame: null },
        { msg: plain, msgId: 0, groups: [], normal: true, frame: null },
      ]
      const buf = packEntries(entries)
      const got: (PackedEntry | FramedRecord)[] = []
      unpackRecords(buf, (r) => got.push(r))
      expect(got.map((r) => r instanceof FramedRecord)).toEqual([true, true, false, false, false])
      const [a, b] = got as [FramedRecord, FramedRecord]
      expect([a.topic, a.origin, a.publisherId, a.v5, a.normal]).toEqual(['a/b', 'w1', 'c1', false, true])
      expect([b.publisherId, b.v5, b.normal]).toEqual(['c2', true, false])
      expect(a.frame).toEqual(v3Frame)
      expect(b.frame).toEqual(v5Frame)
      expect(a.frame.buffer).toBe(buf.buffer)
      expect([a.entry(), b.entry(), ...got.slice(2)]).toEqual(unpack(buf))
      // a record cut inside its group count is refused, not read as framed
      expect(() => unpackRecords(packEntries(entries.slice(0, 1)).subarray(0, -1), () => undefined)).toThrow(PackedBatchError)
    })

    it('are left out for a peer that reads version 3 only', () => {
      const buf = packEntries([{ msg: plain, msgId: 0, groups: [], normal: true, frame: v3Frame }], PACKED_VERSION_NO_FRAMES)
      expect(buf[0]).toBe(3)
      const [e] = unpack(buf)
      expect(e!.frame).toBeNull()
      expect(e!.msg.payload).toEqual(plain.payload)
    })

    it('refuse a frame whose header or lengths disagree with its size, a frame in version 3, a 5.0 frame with properties', () => {
      const good = packEntries([{ msg: plain, msgId: 0, groups: [], normal: true, frame: v3Frame }])
      const frameAt = good.length - 2 - v3Frame.length
      expect(good.subarray(frameAt).subarray(0, v3Frame.length)).toEqual(v3Frame)
      const bad = (patch: (b: Buffer) => void): Buffer => {
        const b = Buffer.from(good)
        patch(b)
        return b
      }
      expect(() => unpack(bad((b) => (b[frameAt] = 0x31)))).toThrow(/malformed frame/)
      expect(() => unpack(bad((b) => b[frameAt + 1]!++))).toThrow(/malformed frame/)
      expect(() => unpack(bad((b) => (b[frameAt + 3] = 0xff)))).toThrow(/malformed frame/)
      expect(() => unpack(bad((b) => (b[0] = 3)))).toThrow(/version 3/)
      const withProps = packEntries([{ msg: { ...plain, properties: { contentType: 'x' } }, msgId: 0, groups: [], normal: true, frame: v5Frame }])
      expect(() => unpack(withProps)).toThrow(/properties/)
    })
  })
})

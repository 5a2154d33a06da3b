import { describe, expect, it } from 'vitest'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import { packEntries, PackedBatchError, unpackEntries, type PackedEntry } from '../../src/cluster/packed-batch.js'

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
    expect(got).toEqual(entries)
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
})

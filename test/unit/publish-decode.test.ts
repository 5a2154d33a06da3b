// The worker's PUBLISH fast path (worker/frame-reader.ts) against mqtt-packet: every PUBLISH it
// decodes must read exactly as mqtt-packet reads it, also when it reuses the previous topic
// string; the frame it hands on as the subscribers' encoding (FastPublish.frame) must be the
// bytes the encoder would write; and the encode cache must use that frame for its own message
// only.

import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import { EncodeCache, encodePlainPublish } from '../../worker/encode.js'
import { FrameReader, type FastPublish, type FrameSink } from '../../worker/frame-reader.js'

class Sink implements FrameSink {
  packets: FastPublish[] = []
  fallbacks: Buffer[] = []
  readonly open = true
  packet(p: Packet): void {
    this.packets.push(p as FastPublish)
  }
  fallback(frame: Buffer): void {
    this.fallbacks.push(Buffer.from(frame))
  }
  error(reason: string): void {
    throw new Error(reason)
  }
}

type Pub = { topic: string; payload: string; qos: 0 | 1 | 2; retain?: boolean; dup?: boolean }

function gen(p: Pub, version: 4 | 5): Buffer {
  return mqttPacket.generate(
    { cmd: 'publish', topic: p.topic, payload: Buffer.from(p.payload), qos: p.qos, retain: p.retain ?? false, dup: p.dup ?? false, messageId: p.qos > 0 ? 7 : undefined },
    { protocolVersion: version },
  )
}

function parse(frame: Buffer, version: 4 | 5): IPublishPacket {
  const parser = mqttPacket.parser({ protocolVersion: version })
  let out: IPublishPacket | undefined
  parser.on('packet', (p: Packet) => (out = p as IPublishPacket))
  parser.parse(frame)
  return out!
}

const fields = (p: IPublishPacket): Record<string, unknown> => ({
  topic: p.topic, payload: Buffer.from(p.payload as Buffer).toString('hex'), qos: p.qos, retain: p.retain, dup: p.dup,
  messageId: p.qos > 0 ? p.messageId : undefined,
})

// same topic repeated, same length but other bytes, other lengths, non-ASCII in between
const SEQUENCE: Pub[] = [
  { topic: 'a/b', payload: 'one', qos: 0 },
  { topic: 'a/b', payload: 'two', qos: 0 },
  { topic: 'a/c', payload: 'three', qos: 0 },
  { topic: 'a/bc', payload: '', qos: 1 },
  { topic: 'b/c', payload: 'x', qos: 0, retain: true },
  { topic: 'b/c', payload: 'y', qos: 2, dup: true },
  { topic: 'sensor/ü', payload: 'z', qos: 0 },
  { topic: 'sensor/u', payload: 'z', qos: 0 },
  { topic: 'sensor/ü', payload: 'z', qos: 0 },
  { topic: 'a/b', payload: 'x'.repeat(300), qos: 0 },
  { topic: 'a/b', payload: 'end', qos: 1, retain: true },
]

describe('PUBLISH fast path', () => {
  for (const version of [4, 5] as const) {
    it(`reads every PUBLISH as mqtt-packet does, also when the topic repeats (protocol ${version})`, () => {
      const reader = new FrameReader(1 << 20)
      reader.v5 = version === 5
      const sink = new Sink()
      const frames = SEQUENCE.map((p) => gen(p, version))
      for (const f of frames) reader.push(f, sink)
      expect(sink.fallbacks).toEqual([])
      expect(sink.packets.map(fields)).toEqual(frames.map((f) => fields(parse(f, version))))
    })

    it(`hands on a plain QoS 0 frame as the subscribers' encoding, and nothing else (protocol ${version})`, () => {
      const reader = new FrameReader(1 << 20)
      reader.v5 = version === 5
      const sink = new Sink()
      for (const p of SEQUENCE) reader.push(gen(p, version), sink)
      SEQUENCE.forEach((p, i) => {
        const got = sink.packets[i]!
        const plain = p.qos === 0 && !p.retain && !p.dup
        if (!plain) expect(got.frame).toBeUndefined()
        else expect(got.frame).toEqual(encodePlainPublish(p.topic, Buffer.from(p.payload), 0, false, version === 5, 0))
      })
    })
  }

  it('reads frames split into single bytes', () => {
    const reader = new FrameReader(1 << 20)
    const sink = new Sink()
    const bytes = Buffer.concat(SEQUENCE.map((p) => gen(p, 4)))
    for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1), sink)
    expect(sink.packets.map((p) => p.topic)).toEqual(SEQUENCE.map((p) => p.topic))
  })

  it('hands on copies: frames and payloads stay intact when the read buffer is overwritten or reused', () => {
    const reader = new FrameReader(1 << 20)
    const sink = new Sink()
    // 200 frames of ~100 bytes (several 8 KiB copies), one larger than a copy, then the same
    // buffer object again with other bytes
    const pubs: Pub[] = Array.from({ length: 200 }, (_, i) => ({ topic: `t/${i % 7}`, payload: `${i}`.padEnd(90, '.'), qos: (i % 3) as 0 | 1 | 2 }))
    pubs.splice(100, 0, { topic: 'big', payload: 'b'.repeat(20_000), qos: 0 })
    const chunk = Buffer.concat(pubs.map((p) => gen(p, 4)))
    const expected = pubs.map((p) => gen(p, 4))
    reader.push(chunk, sink)
    chunk.fill(0)
    const again = Buffer.concat(pubs.map((p) => gen({ ...p, payload: p.payload.toUpperCase() }, 4)))
    expected.push(...pubs.map((p) => gen({ ...p, payload: p.payload.toUpperCase() }, 4)))
    again.copy(chunk)
    reader.push(chunk, sink)
    chunk.fill(0)
    expect(sink.packets.map(fields)).toEqual(expected.map((f) => fields(parse(f, 4))))
    sink.packets.forEach((p, i) => {
      if (p.frame) expect(p.frame.equals(expected[i]!)).toBe(true)
    })
    // a small buffer object read twice, with other bytes the second time
    const small = gen({ topic: 'a/b', payload: 'first', qos: 0 }, 4)
    reader.push(small, sink)
    gen({ topic: 'a/b', payload: 'again', qos: 0 }, 4).copy(small)
    reader.push(small, sink)
    expect(sink.packets.slice(-2).map((p) => p.payload.toString())).toEqual(['first', 'again'])
  })

  it('reads a stream cut at any point, and a large frame arriving in many reads', () => {
    const stream = Buffer.concat(SEQUENCE.map((p) => gen(p, 4)))
    const want = SEQUENCE.map((p) => fields(parse(gen(p, 4), 4)))
    for (let cut = 0; cut <= stream.length; cut++) {
      const reader = new FrameReader(1 << 20)
      const sink = new Sink()
      const reads = [Buffer.from(stream.subarray(0, cut)), Buffer.from(stream.subarray(cut))]
      for (const r of reads) reader.push(r, sink)
      // what was handed on is a copy, also for the frame joined across the cut
      for (const r of reads) r.fill(0)
      expect(sink.packets.map(fields), `cut at ${cut}`).toEqual(want)
    }
    const big = gen({ topic: 'big', payload: 'x'.repeat(300_000), qos: 1 }, 4)
    const both = Buffer.concat([stream, big, stream])
    const reader = new FrameReader(1 << 20)
    const sink = new Sink()
    for (let i = 0, k = 1; i < both.length; k = (k * 7919) % 4099) reader.push(both.subarray(i, (i += k)), sink)
    expect(sink.packets.map(fields)).toEqual([...want, fields(parse(big, 4)), ...want])
  })

  it('refuses a frame over the limit as soon as its header is in, also when the header is cut', () => {
    const frame = gen({ topic: 't', payload: 'x'.repeat(200), qos: 0 }, 4)
    for (let cut = 1; cut <= 3; cut++) {
      const reader = new FrameReader(100)
      const errors: string[] = []
      const sink = Object.assign(new Sink(), { error: (r: string) => void errors.push(r) })
      reader.push(frame.subarray(0, cut), sink)
      expect(errors).toEqual(cut >= 3 ? ['packet_too_large'] : [])
      if (cut < 3) reader.push(frame.subarray(cut, 3), sink)
      expect(errors).toEqual(['packet_too_large'])
    }
  })

  it('does not hand on a frame whose remaining length is not minimally encoded', () => {
    // PUBLISH QoS 0, topic "t", payload "p": remaining length 4 written in two bytes
    const frame = Buffer.from([0x30, 0x84, 0x00, 0x00, 0x01, 0x74, 0x70])
    const reader = new FrameReader(1 << 20)
    const sink = new Sink()
    reader.push(frame, sink)
    expect(sink.packets.map(fields)).toEqual([{ topic: 't', payload: '70', qos: 0, retain: false, dup: false, messageId: undefined }])
    expect(sink.packets[0]!.frame).toBeUndefined()
  })

  it('leaves a topic that is not UTF-8 to mqtt-packet, after a cached topic of the same length', () => {
    const reader = new FrameReader(1 << 20)
    const sink = new Sink()
    reader.push(gen({ topic: 'ab', payload: '', qos: 0 }, 4), sink)
    const bad = Buffer.from([0x30, 0x04, 0x00, 0x02, 0xc3, 0x28])
    reader.push(bad, sink)
    expect(sink.packets).toHaveLength(1)
    expect(sink.fallbacks).toEqual([bad])
  })
})

describe('EncodeCache.prime', () => {
  const msg = (topic: string): BrokerMessage => ({ topic, payload: Buffer.from('p'), qos: 0, retain: false, origin: 'w', publisherId: 'c' })

  it('uses the primed frame for its own message, in its own family only', () => {
    const enc = new EncodeCache()
    const m = msg('t')
    const frame = encodePlainPublish('t', m.payload, 0, false, false, 0)
    enc.prime(m, frame, false)
    enc.reset(m)
    expect(enc.get(m, 0, false, false)).toBe(frame)
    const v5 = enc.get(m, 0, false, true)
    expect(v5).not.toBe(frame)
    expect(v5).toEqual(encodePlainPublish('t', m.payload, 0, false, true, 0))
  })

  it('forgets a primed frame at the next fan-out, whatever its message', () => {
    const enc = new EncodeCache()
    const m = msg('t')
    const other = msg('u')
    const frame = Buffer.from('not the encoding')
    enc.prime(m, frame, false)
    enc.reset(other)
    expect(enc.get(other, 0, false, false)).toEqual(encodePlainPublish('u', other.payload, 0, false, false, 0))
    enc.reset(m)
    expect(enc.get(m, 0, false, false)).toEqual(encodePlainPublish('t', m.payload, 0, false, false, 0))
  })
})

describe('DISCONNECT fast path', () => {
  for (const version of [4, 5] as const) {
    it(`reads the 2-byte DISCONNECT as mqtt-packet does, and leaves the others to it (protocol ${version})`, () => {
      const reader = new FrameReader(1 << 20)
      reader.v5 = version === 5
      const sink = new Sink()
      const plain = Buffer.from([0xe0, 0x00])
      reader.push(plain, sink)
      const theirs = parse(plain, version) as Packet & { reasonCode?: number }
      expect(sink.packets).toEqual([{ cmd: 'disconnect', length: 0, ...(theirs.reasonCode === undefined ? {} : { reasonCode: theirs.reasonCode }) }])
      // reserved flags set, or (5.0) a reason code: mqtt-packet decides
      reader.push(Buffer.from([0xe1, 0x00]), sink)
      if (version === 5) reader.push(Buffer.from([0xe0, 0x01, 0x04]), sink)
      expect(sink.fallbacks).toHaveLength(version === 5 ? 2 : 1)
    })
  }
})

describe('encodePlainPublish', () => {
  const topics = ['a/b', 'sensors/é/température', 'x'.repeat(300), 'emoji/\u{1F600}', '']
  for (const topic of topics) {
    for (const [qos, retain, version] of [[0, false, 4], [1, true, 4], [2, false, 5], [0, true, 5]] as const) {
      it(`writes what mqtt-packet writes: topic of ${topic.length} chars, QoS ${qos}, retain ${retain}, protocol ${version}`, () => {
        const payload = Buffer.from('payload-' + topic.length)
        const ours = encodePlainPublish(topic, payload, qos, retain, version === 5, qos > 0 ? 0x1234 : 0)
        const theirs = mqttPacket.generate(
          { cmd: 'publish', topic, payload, qos, retain, dup: false, messageId: qos > 0 ? 0x1234 : undefined, ...(version === 5 ? { properties: {} } : {}) },
          { protocolVersion: version },
        )
        expect(ours).toEqual(theirs)
      })
    }
  }
})

import { describe, expect, it } from 'vitest'
import * as mqtt from 'mqtt-packet'
import { Framer } from '../../bench/gen/framer.js'
import { OFF_PUB, OFF_SENT_AT, OFF_SEQ } from '../../bench/gen/payload.js'
import { payloadStart, publishPid, publishTemplate, stampPublish, type ProtocolVersion, type Qos } from '../../bench/gen/publish-frame.js'

function parseAll(buf: Buffer, protocolVersion: ProtocolVersion): mqtt.Packet[] {
  const p = mqtt.parser({ protocolVersion })
  const out: mqtt.Packet[] = []
  p.on('packet', (x: mqtt.Packet) => out.push(x))
  p.on('error', (e: Error) => {
    throw e
  })
  p.parse(buf)
  return out
}

describe('bench hand-encoded PUBLISH frames', () => {
  const cases: [Qos, ProtocolVersion, number][] = [[0, 4, 64], [1, 4, 64], [2, 4, 16], [0, 5, 64], [1, 5, 200], [2, 5, 16_384]]
  for (const [qos, protocol, size] of cases) {
    it(`parse back with mqtt-packet (QoS ${qos}, v${protocol}, ${size} B) and carry the payload fields`, () => {
      const t = publishTemplate('bench/pair/3', qos, protocol, size, 3)
      const out = Buffer.alloc(t.frame.length * 2)
      stampPublish(t, out, 0, 7, 41, 1234.5)
      stampPublish(t, out, t.frame.length, 8, 42, 1235.25)
      const pkts = parseAll(out, protocol) as mqtt.IPublishPacket[]
      expect(pkts).toHaveLength(2)
      expect(pkts[0]).toMatchObject({ cmd: 'publish', topic: 'bench/pair/3', qos, retain: false, dup: false })
      if (qos > 0) expect(pkts.map((p) => p.messageId)).toEqual([7, 8])
      const pl = pkts[1]!.payload as Buffer
      expect(pl.length).toBe(size)
      expect(pl.readUInt32BE(OFF_PUB)).toBe(3)
      expect(pl.readUInt32BE(OFF_SEQ)).toBe(42)
      expect(pl.readDoubleLE(OFF_SENT_AT)).toBe(1235.25)
    })
  }

  it('framer splits frames across arbitrary chunk boundaries, and the hot-path readers agree with mqtt-packet', () => {
    const frames = [
      mqtt.generate({ cmd: 'publish', topic: 'a/b', qos: 1, messageId: 513, dup: false, retain: false, payload: Buffer.alloc(300, 1) }),
      mqtt.generate({ cmd: 'puback', messageId: 9 }),
      mqtt.generate({ cmd: 'publish', topic: 't', qos: 0, dup: false, retain: false, payload: Buffer.from('hello') }),
      mqtt.generate({ cmd: 'pingresp' }),
    ]
    const stream = Buffer.concat(frames)
    for (const step of [1, 2, 3, 7, 64, stream.length]) {
      const f = new Framer()
      const seen: { byte0: number; len: number; pid?: number; payload?: string }[] = []
      for (let i = 0; i < stream.length; i += step) {
        f.push(stream.subarray(i, i + step), (buf, byte0, s, e) => {
          const rec: (typeof seen)[number] = { byte0, len: e - s }
          if (byte0 >> 4 === 3) {
            if ((byte0 & 6) !== 0) rec.pid = publishPid(buf, s)
            rec.payload = buf.subarray(payloadStart(buf, byte0, s, 4), e).toString('latin1')
          }
          seen.push(rec)
        })
      }
      expect(seen.map((x) => x.byte0)).toEqual([0x32, 0x40, 0x30, 0xd0])
      expect(seen[0]!.len).toBe(2 + 3 + 2 + 300)
      expect(seen[0]!.pid).toBe(513)
      expect(seen[2]!.payload).toBe('hello')
      expect(seen[3]!.len).toBe(0)
    }
  })

  it('framer rejects a malformed remaining length', () => {
    const f = new Framer()
    expect(() => f.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), () => {})).toThrow(/remaining length/)
  })

  it('finds the payload of a v5 PUBLISH with properties', () => {
    const buf = mqtt.generate(
      { cmd: 'publish', topic: 'x', qos: 1, messageId: 5, dup: false, retain: false, payload: Buffer.from('pay'), properties: { userProperties: { k: 'v' }, contentType: 'c' } },
      { protocolVersion: 5 },
    )
    const f = new Framer()
    let payload = ''
    f.push(buf, (b, byte0, s, e) => {
      payload = b.subarray(payloadStart(b, byte0, s, 5), e).toString()
    })
    expect(payload).toBe('pay')
  })
})

// The worker's in-place CONNECT decoder (worker/frame-reader.ts) against mqtt-packet: what it
// accepts it must read exactly as mqtt-packet does, and anything it is not sure about (wills,
// 5.0 properties, non-ASCII strings, reserved bits, odd name/level pairs, trailing or missing
// bytes) it must leave to mqtt-packet (null).

import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { decodeConnect } from '../../worker/frame-reader.js'

/** Offset of the body (after the fixed header) of one whole packet. */
function bodyAt(frame: Buffer): number {
  let i = 1
  while (frame[i++]! & 0x80);
  return i
}

function decode(frame: Buffer): IConnectPacket | null {
  return decodeConnect(frame, bodyAt(frame), frame.length)
}

function parse(frame: Buffer): { packet?: IConnectPacket; error?: string } {
  const parser = mqttPacket.parser()
  const out: { packet?: IConnectPacket; error?: string } = {}
  parser.on('packet', (p: Packet) => (out.packet = p as IConnectPacket))
  parser.on('error', (e: Error) => (out.error = e.message))
  parser.parse(frame)
  return out
}

/** The fields the broker reads from a CONNECT. */
function fields(p: IConnectPacket): Record<string, unknown> {
  return {
    cmd: p.cmd, protocolId: p.protocolId, protocolVersion: p.protocolVersion, clean: p.clean, keepalive: p.keepalive,
    clientId: p.clientId, username: p.username, password: p.password === undefined ? undefined : Buffer.from(p.password).toString('hex'),
    will: p.will, properties: p.properties, length: p.length,
  }
}

const gen = (p: Partial<IConnectPacket>, version: 3 | 4 | 5 = 4): Buffer =>
  mqttPacket.generate({ cmd: 'connect', protocolId: version === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: version, clientId: 'c1', clean: true, keepalive: 0, ...p } as IConnectPacket)

describe('decodeConnect', () => {
  const common: Array<[string, Buffer]> = [
    ['3.1.1 clean', gen({})],
    ['3.1.1 persistent, keepalive 60', gen({ clean: false, keepalive: 60, clientId: 'sensor-0042' })],
    ['3.1.1 empty client ID', gen({ clientId: '' })],
    ['3.1.1 user name and password', gen({ username: 'alice', password: Buffer.from([0, 0xff, 0x80]) })],
    ['3.1.1 user name only', gen({ username: 'bob', keepalive: 65535 })],
    ['3.1 MQIsdp', gen({ clientId: 'old' }, 3)],
    ['5.0 no properties', gen({ keepalive: 30 }, 5)],
    ['5.0 user name and password', gen({ username: 'u', password: Buffer.from('p') }, 5)],
    ['client ID with U+0000 (refused later by the handler)', gen({ clientId: 'a\u0000b' })],
    ['long client ID (2-byte remaining length)', gen({ clientId: 'x'.repeat(300) })],
  ]
  it.each(common)('reads %s exactly as mqtt-packet does', (_name, frame) => {
    const fast = decode(frame)
    const ref = parse(frame)
    expect(ref.error).toBeUndefined()
    expect(fast).not.toBeNull()
    expect(fields(fast!)).toEqual(fields(ref.packet!))
  })

  const left: Array<[string, Buffer]> = [
    ['a will', gen({ will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false } })],
    ['5.0 properties', gen({ properties: { sessionExpiryInterval: 10 } }, 5)],
    ['a non-ASCII client ID', gen({ clientId: 'caf\u00e9' })],
    ['a non-ASCII user name', gen({ username: '\u00fcser' })],
    ['the reserved flag bit set', (() => { const f = gen({}); f[9] = f[9]! | 1; return f })()],
    ['will QoS without will flag', (() => { const f = gen({}); f[9] = f[9]! | 0x08; return f })()],
    ['will retain without will flag', (() => { const f = gen({}); f[9] = f[9]! | 0x20; return f })()],
    ['an unknown protocol level', (() => { const f = gen({}); f[8] = 6; return f })()],
    ['a bridge protocol level', (() => { const f = gen({}); f[8] = 0x84; return f })()],
    ['"MQTT" with level 3', (() => { const f = gen({}); f[8] = 3; return f })()],
    ['another protocol name', (() => { const f = gen({}); f[4] = 0x58; return f })()],
    ['user name flag without the field', (() => { const f = gen({}); f[9] = f[9]! | 0x80; return f })()],
    ['a client ID longer than the packet', (() => { const f = gen({}); f[13] = 50; return f })()],
    ['a byte after the last field', (() => { const f = gen({}); const g = Buffer.concat([f, Buffer.from([0x41])]); g[1] = g[1]! + 1; return g })()],
  ]
  it.each(left)('leaves a CONNECT with %s to mqtt-packet', (_name, frame) => {
    expect(decode(frame)).toBeNull()
  })

  it('accepts only what mqtt-packet accepts, and reads it the same way, under byte flips', () => {
    const seeds = common.map(([, f]) => f)
    let rng = 12345
    const rand = (n: number): number => {
      rng = (rng * 1103515245 + 12345) & 0x7fffffff
      return rng % n
    }
    let decoded = 0
    for (let k = 0; k < 5000; k++) {
      const frame = Buffer.from(seeds[k % seeds.length]!)
      const body = bodyAt(frame)
      for (let flips = 1 + rand(2); flips > 0; flips--) frame[body + rand(frame.length - body)] = rand(256)
      const fast = decode(frame)
      if (fast === null) continue
      decoded++
      const ref = parse(frame)
      expect(ref.error).toBeUndefined()
      expect(fields(fast)).toEqual(fields(ref.packet!))
    }
    // the flips must leave enough packets decodable for this to test anything
    expect(decoded).toBeGreaterThan(500)
  })
})

import { describe, expect, it } from 'vitest'
import mqtt from 'mqtt-packet'
import { connackServerUnavailable, peekConnect } from '../../src/mqtt/connect-peek.js'

const MAX = 65536

function connect(protocolVersion: 3 | 4 | 5, clientId: string, extra: Partial<mqtt.IConnectPacket> = {}): Buffer {
  return mqtt.generate({
    cmd: 'connect',
    protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion,
    clientId,
    clean: true,
    keepalive: 30,
    ...extra,
  } as mqtt.IConnectPacket)
}

const cases: Array<[string, Buffer, string, number]> = [
  ['3.1', connect(3, 'old-client'), 'old-client', 3],
  ['3.1.1', connect(4, 'dev-1', { username: 'u', password: Buffer.from('p') }), 'dev-1', 4],
  ['3.1.1 with will', connect(4, 'w', { will: { topic: 'a/b', payload: Buffer.from('bye'), qos: 1, retain: false } }), 'w', 4],
  ['5.0 with properties', connect(5, 'five', { properties: { sessionExpiryInterval: 60, receiveMaximum: 10, userProperties: { a: 'b' } } }), 'five', 5],
  ['5.0 empty client ID', connect(5, ''), '', 5],
  ['3.1.1 long client ID (2-byte length)', connect(4, 'x'.repeat(300)), 'x'.repeat(300), 4],
]

describe('peekConnect', () => {
  it.each(cases)('parses a %s CONNECT fed byte by byte', (_name, bytes, clientId, version) => {
    for (let n = 0; n < bytes.length; n++) expect(peekConnect(bytes.subarray(0, n), MAX)).toEqual({ kind: 'more' })
    expect(peekConnect(bytes, MAX)).toEqual({ kind: 'connect', clientId, protocolVersion: version, length: bytes.length })
  })

  it('ignores bytes after the CONNECT (a client may pipeline its first PUBLISH)', () => {
    const c = connect(4, 'pipe')
    const pub = mqtt.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, dup: false, retain: false })
    expect(peekConnect(Buffer.concat([c, pub]), MAX)).toMatchObject({ kind: 'connect', clientId: 'pipe', length: c.length })
  })

  it('rejects a first packet that is not CONNECT at the first byte', () => {
    expect(peekConnect(Buffer.from('GET / HTTP/1.1\r\n'), MAX)).toMatchObject({ kind: 'reject', reason: 'not-connect' })
    expect(peekConnect(Buffer.from([0x30]), MAX)).toMatchObject({ kind: 'reject', reason: 'not-connect' })
    // CONNECT with reserved flag bits set [MQTT-2.2.2-1]
    expect(peekConnect(Buffer.from([0x11]), MAX)).toMatchObject({ kind: 'reject', reason: 'not-connect' })
  })

  it('rejects an oversized CONNECT as soon as its length is known', () => {
    const big = connect(4, 'big', { username: 'u', password: Buffer.alloc(70000) })
    expect(peekConnect(big.subarray(0, 4), MAX)).toMatchObject({ kind: 'reject', reason: 'too-large' })
  })

  it('rejects a malformed remaining length and a malformed body', () => {
    expect(peekConnect(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), MAX)).toMatchObject({ kind: 'reject', reason: 'malformed' })
    const bad = connect(4, 'x')
    bad[4] = 0x58 // protocol name "MQTT" -> "XQTT"
    expect(peekConnect(bad, MAX)).toMatchObject({ kind: 'reject', reason: 'malformed' })
    const v6 = connect(4, 'x')
    v6[8] = 6 // unknown protocol level
    expect(peekConnect(v6, MAX)).toMatchObject({ kind: 'reject', reason: 'malformed' })
    // the shared parser recovers after errors
    expect(peekConnect(connect(5, 'after'), MAX)).toMatchObject({ kind: 'connect', clientId: 'after' })
  })

  it('reads CONNECTs in place exactly as mqtt-packet parses them', () => {
    const will = { topic: 'w/t', payload: Buffer.from('gone'), qos: 1 as const, retain: true }
    const variants: Buffer[] = []
    for (const v of [3, 4, 5] as const) {
      for (const extra of [{}, { username: 'u' }, { username: 'u', password: Buffer.from('pw') }, { will }, { will, username: 'ü', password: Buffer.alloc(3) }, { clean: false, keepalive: 0 }]) {
        for (const id of ['a', 'dévice-€', 'y'.repeat(200), ...(v === 3 || 'clean' in extra ? [] : [''])]) variants.push(connect(v, id, extra))
      }
    }
    for (const bytes of variants) {
      const p = mqtt.parser()
      let parsed: mqtt.IConnectPacket | undefined
      p.on('packet', (packet) => (parsed = packet as mqtt.IConnectPacket))
      p.parse(bytes)
      expect(peekConnect(bytes, MAX)).toEqual({ kind: 'connect', clientId: parsed!.clientId, protocolVersion: parsed!.protocolVersion, length: bytes.length })
    }
  })

  it('rejects bad connect flags and fields that overrun the packet', () => {
    const flagsAt = (b: Buffer): number => (b[3] === 6 ? 11 : 9) // after name and level
    const reserved = connect(4, 'r')
    reserved[flagsAt(reserved)]! |= 0x01 // [MQTT-3.1.2-3]
    const willQosNoWill = connect(4, 'q')
    willQosNoWill[flagsAt(willQosNoWill)]! |= 0x08 // [MQTT-3.1.2-13]
    const willRetainNoWill = connect(3, 'q')
    willRetainNoWill[flagsAt(willRetainNoWill)]! |= 0x20 // [MQTT-3.1.2-15]
    const shortUser = connect(4, 'u', { username: 'user' })
    shortUser.writeUInt16BE(50, shortUser.length - 6) // username length past the end
    const shortId = connect(4, 'abc')
    shortId.writeUInt16BE(9, shortId.length - 5) // client ID length past the end
    for (const bad of [reserved, willQosNoWill, willRetainNoWill, shortUser, shortId]) {
      expect(peekConnect(bad, MAX)).toMatchObject({ kind: 'reject', reason: 'malformed' })
    }
  })

  it('builds CONNACK server unavailable in the client version', () => {
    const p4 = mqtt.parser({ protocolVersion: 4 })
    const p5 = mqtt.parser({ protocolVersion: 5 })
    const got: mqtt.Packet[] = []
    p4.on('packet', (p) => got.push(p))
    p5.on('packet', (p) => got.push(p))
    p4.parse(connackServerUnavailable(4))
    p5.parse(connackServerUnavailable(5))
    expect(got[0]).toMatchObject({ cmd: 'connack', returnCode: 3 })
    expect(got[1]).toMatchObject({ cmd: 'connack', reasonCode: 0x88 })
  })
})

// PROXY protocol v2 codec (src/mqtt/proxy-protocol.ts): what the router writes before the
// CONNECT it peeked, and what the worker parses.
import { encodeProxyV2, encodeProxyV2Local, parseProxyV2 } from '../../src/mqtt/proxy-protocol.js'

describe('PROXY protocol v2', () => {
  it.each([
    [{ address: '192.0.2.7', port: 51000 }, { address: '10.0.0.1', port: 1884 }, '192.0.2.7'],
    [{ address: '::ffff:192.0.2.7', port: 1 }, { address: '127.0.0.1', port: 2 }, '192.0.2.7'],
    [{ address: '2001:db8::1', port: 65535 }, { address: 'fd00::2:0:3', port: 1884 }, '2001:db8::1'],
    [{ address: '2001:db8::1', port: 9 }, { address: '10.0.0.1', port: 1884 }, '2001:db8::1'],
  ])('round-trips %j byte by byte', (source, destination, expected) => {
    const header = encodeProxyV2(source, destination)
    const stream = Buffer.concat([header, connect(4, 'after-proxy')])
    for (let n = 0; n < header.length; n++) expect(parseProxyV2(stream.subarray(0, n))).toBeNull()
    const parsed = parseProxyV2(stream)!
    expect(parsed.length).toBe(header.length)
    expect(parsed.source).toEqual({ address: expected, port: source.port })
    expect(peekConnect(stream.subarray(parsed.length), MAX)).toMatchObject({ kind: 'connect', clientId: 'after-proxy' })
  })

  it('parses LOCAL without addresses and rejects non-PROXY bytes at once', () => {
    expect(parseProxyV2(encodeProxyV2Local())).toEqual({ length: 16, source: null, destination: null })
    expect(() => parseProxyV2(connect(4, 'x'))).toThrow(/signature/)
    const v1 = Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')
    expect(() => parseProxyV2(v1)).toThrow(/signature/)
  })
})

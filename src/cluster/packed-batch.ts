// The packed form of a PublishBatch (wire revision 2, `PublishBatch.packed`): every message of
// the batch in one `bytes` field, so protobuf handles one field per batch instead of a nested
// message, eleven fields and an object conversion per message on both sides. Big-endian:
//
//   record := flags:u8  msg_id:u48  topic:str16  payload:bytes32  origin:str16  publisher:str16
//             groups:u16 (str16 each)  [expires_at:f64 if flags.4]  [properties if flags.5]
//   flags  := bits 0-1 qos | bit 2 retain | bit 3 normal | bit 4 expires_at | bit 5 properties
//   properties := pflags:u8 (0 has format, 1 format value, 2 content type, 3 response topic,
//                 4 correlation data)  [str16] [str16] [bytes32]  user:u16 (key str16, value str16 each)
//   str16 := length:u16 utf8 ; bytes32 := length:u32 bytes
//
// MQTT bounds every string here to 65,535 bytes [MQTT-1.5.4], so u16 lengths are enough.
// Received payloads are views into the batch buffer (as protobuf's own decoding gives).

import type { BrokerMessage, MessageProperties, QoS } from '../mqtt/message.js'

export interface PackedEntry {
  msg: BrokerMessage
  /** per-link id echoed in PublishAck; 0 for QoS 0 */
  msgId: number
  groups: readonly string[]
  normal: boolean
}

export class PackedBatchError extends Error {}

const F_RETAIN = 4
const F_NORMAL = 8
const F_EXPIRES = 16
const F_PROPS = 32

/** Upper bound of a record's size (3 bytes per UTF-16 unit bounds UTF-8). */
export function packedBound(e: PackedEntry): number {
  const m = e.msg
  let n = 1 + 6 + 2 + 4 + 2 + 2 + 2 + 8 + m.payload.length + 3 * (m.topic.length + m.origin.length + m.publisherId.length)
  for (const g of e.groups) n += 2 + 3 * g.length
  if (m.properties) n += propsBound(m.properties)
  return n
}

export function packEntries(entries: readonly PackedEntry[]): Buffer {
  let bound = 0
  for (const e of entries) bound += packedBound(e)
  const buf = Buffer.allocUnsafe(bound)
  let o = 0
  for (const e of entries) {
    const m = e.msg
    let flags = m.qos & 3
    if (m.retain) flags |= F_RETAIN
    if (e.normal) flags |= F_NORMAL
    if (m.expiresAt !== undefined) flags |= F_EXPIRES
    if (m.properties !== undefined) flags |= F_PROPS
    buf[o++] = flags
    buf.writeUIntBE(e.msgId, o, 6)
    o = str16(buf, o + 6, m.topic)
    buf.writeUInt32BE(m.payload.length, o)
    o += 4 + m.payload.copy(buf, o + 4)
    o = str16(buf, o, m.origin)
    o = str16(buf, o, m.publisherId)
    buf.writeUInt16BE(e.groups.length, o)
    o += 2
    for (const g of e.groups) o = str16(buf, o, g)
    if (m.expiresAt !== undefined) o = buf.writeDoubleBE(m.expiresAt, o)
    if (m.properties !== undefined) o = packProps(buf, o, m.properties)
  }
  return buf.subarray(0, o)
}

/** Calls `each` for every record, in order. Throws PackedBatchError on malformed bytes. */
export function unpackEntries(buf: Buffer, each: (e: PackedEntry) => void): void {
  const r = new Reader(buf)
  while (r.o < buf.length) {
    const flags = r.u8()
    const msgId = r.u48()
    const topic = r.str16()
    const payload = r.bytes32()
    const origin = r.str16()
    const publisherId = r.str16()
    const ng = r.u16()
    const groups: string[] = []
    for (let i = 0; i < ng; i++) groups.push(r.str16())
    const qos = flags & 3
    if (qos === 3) throw new PackedBatchError('qos 3')
    const msg: BrokerMessage = { topic, payload, qos: qos as QoS, retain: (flags & F_RETAIN) !== 0, origin, publisherId }
    if ((flags & F_EXPIRES) !== 0) msg.expiresAt = r.f64()
    if ((flags & F_PROPS) !== 0) msg.properties = unpackProps(r)
    each({ msg, msgId, groups, normal: (flags & F_NORMAL) !== 0 })
  }
}

function str16(buf: Buffer, o: number, s: string): number {
  const n = s.length === 0 ? 0 : buf.write(s, o + 2, 'utf8')
  if (n > 0xffff) throw new RangeError('string over 65,535 bytes')
  buf.writeUInt16BE(n, o)
  return o + 2 + n
}

function propsBound(p: MessageProperties): number {
  let n = 1 + 2 + 2 + 4 + 2 + 3 * ((p.contentType?.length ?? 0) + (p.responseTopic?.length ?? 0)) + (p.correlationData?.length ?? 0)
  for (const [k, v] of Object.entries(p.userProperties ?? {})) {
    for (const value of Array.isArray(v) ? v : [v]) n += 4 + 3 * (k.length + value.length)
  }
  return n
}

function packProps(buf: Buffer, o: number, p: MessageProperties): number {
  let f = 0
  if (p.payloadFormatIndicator !== undefined) f |= 1 | (p.payloadFormatIndicator ? 2 : 0)
  if (p.contentType !== undefined) f |= 4
  if (p.responseTopic !== undefined) f |= 8
  if (p.correlationData !== undefined) f |= 16
  buf[o++] = f
  if (p.contentType !== undefined) o = str16(buf, o, p.contentType)
  if (p.responseTopic !== undefined) o = str16(buf, o, p.responseTopic)
  if (p.correlationData !== undefined) {
    buf.writeUInt32BE(p.correlationData.length, o)
    o += 4 + p.correlationData.copy(buf, o + 4)
  }
  const pairs: [string, string][] = []
  for (const [k, v] of Object.entries(p.userProperties ?? {})) for (const value of Array.isArray(v) ? v : [v]) pairs.push([k, value])
  buf.writeUInt16BE(pairs.length, o)
  o += 2
  for (const [k, v] of pairs) o = str16(buf, str16(buf, o, k), v)
  return o
}

function unpackProps(r: Reader): MessageProperties {
  const f = r.u8()
  const p: MessageProperties = {}
  if ((f & 1) !== 0) p.payloadFormatIndicator = (f & 2) !== 0
  if ((f & 4) !== 0) p.contentType = r.str16()
  if ((f & 8) !== 0) p.responseTopic = r.str16()
  if ((f & 16) !== 0) p.correlationData = r.bytes32()
  const n = r.u16()
  if (n > 0) {
    // repeated keys become arrays, in order, as the protobuf form does
    const user: Record<string, string | string[]> = {}
    for (let i = 0; i < n; i++) {
      const key = r.str16()
      const value = r.str16()
      const cur = user[key]
      user[key] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value]
    }
    p.userProperties = user
  }
  return p
}

class Reader {
  o = 0
  constructor(readonly buf: Buffer) {}

  #need(n: number): number {
    const at = this.o
    if (at + n > this.buf.length) throw new PackedBatchError('truncated record')
    this.o = at + n
    return at
  }

  u8(): number {
    return this.buf[this.#need(1)]!
  }

  u16(): number {
    return this.buf.readUInt16BE(this.#need(2))
  }

  u48(): number {
    return this.buf.readUIntBE(this.#need(6), 6)
  }

  f64(): number {
    return this.buf.readDoubleBE(this.#need(8))
  }

  str16(): string {
    const n = this.u16()
    const at = this.#need(n)
    return n === 0 ? '' : this.buf.toString('utf8', at, at + n)
  }

  bytes32(): Buffer {
    const n = this.buf.readUInt32BE(this.#need(4))
    const at = this.#need(n)
    return this.buf.subarray(at, at + n)
  }
}

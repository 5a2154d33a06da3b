// The packed form of a PublishBatch (wire revisions 3 and 4, `PublishBatch.packed`): every message of
// the batch in one `bytes` field, so protobuf handles one field per batch instead of a nested
// message, eleven fields and an object conversion per message on both sides. The strings a
// batch repeats (topics, origin, publisher IDs, group names) are written once, in a table at
// its head, and records refer to them by index: at a high rate a batch carries hundreds of
// messages over a handful of topics, and a UTF-8 encode or decode is a native call each.
// Big-endian:
//
//   batch  := version:u8 (3 or 4)  count:u16  str16 * count  record*
//   record := flags:u8  [msg_id:u48 if qos > 0]  topic:u16  origin:u16  publisher:u16
//             (payload | frame):bytes32  groups:u16 (u16 each)  [expires_at:f64 if flags.4]  [properties if flags.5]
//   flags  := bits 0-1 qos | bit 2 retain | bit 3 normal | bit 4 expires_at | bit 5 properties
//             | bit 6 frame (version 4) | bit 7 the frame is in the 5.0 form
//   properties := pflags:u8 (0 has format, 1 format value, 2 content type, 3 response topic,
//                 4 correlation data)  [str16] [str16] [bytes32]  user:u16 (key str16, value str16 each)
//   str16 := length:u16 utf8 ; bytes32 := length:u32 bytes ; a u16 string reference is a table index
//
// A frame (version 4) is the message's plain QoS 0 PUBLISH as the publisher sent it or as the
// sending worker encoded it (src/mqtt/plain-frame.ts), in place of the bare payload: the
// receiving worker hands it to its QoS 0 subscribers as it is, as a single worker does, instead
// of encoding the PUBLISH again (10-17% of the receiving worker's CPU per message). Version 4 is
// written only to peers whose Hello says they read it; a version 3 reader refuses it.
//
// MQTT bounds every string here to 65,535 bytes [MQTT-1.5.4], so u16 lengths are enough; a
// batch holds at most 65,535 distinct strings (the forwarder's batches hold 500 messages).
// Revision 2 (no table, no version byte) was a development form and is not read: the fabric
// takes packed batches only from peers whose Hello says revision 3 or later (grpc-fabric.ts).
// Received payloads and frames are views into the batch buffer (as protobuf's own decoding gives).

import { Buffer } from 'node:buffer'
import type { BrokerMessage, MessageProperties, QoS } from '../mqtt/message.js'
import { plainFrameIsV5, plainFramePayloadAt } from '../mqtt/plain-frame.js'

export interface PackedEntry {
  msg: BrokerMessage
  /** per-link id echoed in PublishAck; 0 for QoS 0 */
  msgId: number
  groups: readonly string[]
  normal: boolean
  /** the plain QoS 0 PUBLISH of `msg` (its payload is a view of it), or null */
  frame?: Buffer | null
}

export class PackedBatchError extends Error {}

/** the version written when frames may be carried; PACKED_VERSION_NO_FRAMES for older peers */
export const PACKED_VERSION = 4
export const PACKED_VERSION_NO_FRAMES = 3

/** shared by every record without groups (the common case): never mutated */
const NO_GROUPS: readonly string[] = Object.freeze([])

const F_RETAIN = 4
const F_NORMAL = 8
const F_EXPIRES = 16
const F_PROPS = 32
const F_FRAME = 64
const F_FRAME_V5 = 128

/** Interns the strings of one batch: index by first appearance. */
class StringTable {
  readonly list: string[] = []
  #index = new Map<string, number>()
  /** upper bound of the table's encoded size */
  bound = 0

  ref(s: string): number {
    let i = this.#index.get(s)
    if (i === undefined) {
      i = this.list.length
      if (i === 0xffff) throw new RangeError('over 65,535 distinct strings in one batch')
      this.list.push(s)
      this.#index.set(s, i)
      this.bound += 2 + 3 * s.length
    }
    return i
  }
}

/**
 * `version` PACKED_VERSION_NO_FRAMES leaves frames out (payloads only), for peers that do not
 * read them. The batch starts after `headroom` bytes left unwritten in the same allocation
 * (peer-codec.ts puts the protobuf envelope there, so the batch is not copied to be framed).
 */
export function packEntries(entries: readonly PackedEntry[], version = PACKED_VERSION, headroom = 0): Buffer {
  if (entries.length === 0) return Buffer.alloc(headroom)
  const strings = new StringTable()
  // one pass for the table, the string references and the records' size bound
  const refs = new Array<number>(entries.length * 3)
  let bound = 3
  // consecutive messages mostly repeat these (one client read yields a run from one
  // publisher; the origin is this worker): a string compare instead of a Map lookup
  let topic: string | null = null
  let origin: string | null = null
  let publisher: string | null = null
  let topicRef = 0
  let originRef = 0
  let publisherRef = 0
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    const m = e.msg
    if (m.topic !== topic) topicRef = strings.ref((topic = m.topic))
    if (m.origin !== origin) originRef = strings.ref((origin = m.origin))
    if (m.publisherId !== publisher) publisherRef = strings.ref((publisher = m.publisherId))
    refs[3 * i] = topicRef
    refs[3 * i + 1] = originRef
    refs[3 * i + 2] = publisherRef
    bound += 1 + 6 + 6 + 4 + 2 + 8 + (e.frame ? e.frame.length : m.payload.length) + 2 * e.groups.length
    for (const g of e.groups) strings.ref(g)
    if (m.properties) bound += propsBound(m.properties)
  }
  const buf = Buffer.allocUnsafe(headroom + bound + strings.bound)
  buf[headroom] = version
  const frames = version >= PACKED_VERSION
  let o = u16(buf, headroom + 1, strings.list.length)
  for (const s of strings.list) o = str16(buf, o, s)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    const m = e.msg
    let flags = m.qos & 3
    if (m.retain) flags |= F_RETAIN
    if (e.normal) flags |= F_NORMAL
    if (m.expiresAt !== undefined) flags |= F_EXPIRES
    if (m.properties !== undefined) flags |= F_PROPS
    const frame = frames && e.frame ? e.frame : null
    if (frame !== null) flags |= plainFrameIsV5(frame, m.payload.length) ? F_FRAME | F_FRAME_V5 : F_FRAME
    buf[o++] = flags
    if (m.qos > 0) {
      // u48 as u16 + u32: writeUIntBE(…, 6) is the slow generic path
      o = u16(buf, o, Math.floor(e.msgId / 0x1_0000_0000))
      o = u32(buf, o, e.msgId % 0x1_0000_0000)
    }
    o = u16(buf, o, refs[3 * i]!)
    o = u16(buf, o, refs[3 * i + 1]!)
    o = u16(buf, o, refs[3 * i + 2]!)
    const bytes = frame ?? m.payload
    o = u32(buf, o, bytes.length)
    buf.set(bytes, o)
    o += bytes.length
    o = u16(buf, o, e.groups.length)
    for (const g of e.groups) o = u16(buf, o, strings.ref(g))
    if (m.expiresAt !== undefined) o = buf.writeDoubleBE(m.expiresAt, o)
    if (m.properties !== undefined) o = packProps(buf, o, m.properties)
  }
  return buf.subarray(0, o)
}

/**
 * A plain QoS 0 record that carries its frame and names no shared group: the receiving worker
 * can write the frame to its subscriber without building the message (Broker.deliverFrame),
 * which is most of what a record costs to receive. `entry()` builds the message when it cannot.
 */
export class FramedRecord {
  constructor(
    readonly topic: string,
    readonly origin: string,
    readonly publisherId: string,
    /** the plain QoS 0 PUBLISH (a view into the batch) */
    readonly frame: Buffer,
    readonly payloadAt: number,
    readonly v5: boolean,
    readonly normal: boolean,
  ) {}

  entry(): PackedEntry {
    const f = this.frame
    const payload = Buffer.from(f.buffer, f.byteOffset + this.payloadAt, f.length - this.payloadAt)
    const msg: BrokerMessage = { topic: this.topic, payload, qos: 0, retain: false, origin: this.origin, publisherId: this.publisherId }
    return { msg, msgId: 0, groups: NO_GROUPS, normal: this.normal, frame: f }
  }
}

/** Calls `each` for every record, in order. Throws PackedBatchError on malformed bytes. */
export function unpackEntries(buf: Buffer, each: (e: PackedEntry) => void): void {
  unpackRecords(buf, (r) => each(r instanceof FramedRecord ? r.entry() : r))
}

/**
 * Calls `each` for every record, in order: a FramedRecord for a plain QoS 0 record with its
 * frame and no groups, else the entry. Throws PackedBatchError on malformed bytes.
 */
export function unpackRecords(buf: Buffer, each: (e: PackedEntry | FramedRecord) => void): void {
  if (buf.length === 0) return
  const version = buf[0]
  if (version !== PACKED_VERSION && version !== PACKED_VERSION_NO_FRAMES) {
    throw new PackedBatchError(`packed batch version ${version}, expected ${PACKED_VERSION_NO_FRAMES} or ${PACKED_VERSION}`)
  }
  const r = new Reader(buf)
  r.o = 1
  const count = r.u16()
  const strings = new Array<string>(count)
  for (let i = 0; i < count; i++) strings[i] = r.str16()
  const str = (): string => {
    const s = strings[r.u16()]
    if (s === undefined) throw new PackedBatchError('string reference out of range')
    return s
  }
  while (r.o < buf.length) {
    const flags = r.u8()
    const qos = flags & 3
    if (qos === 3) throw new PackedBatchError('qos 3')
    const msgId = qos === 0 ? 0 : r.u16() * 0x1_0000_0000 + r.u32()
    const topic = str()
    const origin = str()
    const publisherId = str()
    const bytesAt = r.o + 4
    const bytes = r.bytes32()
    if ((flags & F_FRAME) === 0) {
      each(record(r, flags, msgId, topic, origin, publisherId, bytes, null, str))
      continue
    }
    if (version < PACKED_VERSION) throw new PackedBatchError('frame in a version 3 batch')
    const v5 = (flags & F_FRAME_V5) !== 0
    // a 5.0 frame is plain only without properties and expiry (both are in its property block)
    if (v5 && (flags & (F_PROPS | F_EXPIRES)) !== 0) throw new PackedBatchError('5.0 frame of a message with properties')
    const at = plainFramePayloadAt(bytes, v5)
    if (at < 0) throw new PackedBatchError('malformed frame')
    if (qos === 0 && (flags & (F_RETAIN | F_EXPIRES | F_PROPS)) === 0 && r.peekU16() === 0) {
      r.o += 2
      each(new FramedRecord(topic, origin, publisherId, bytes, at, v5, (flags & F_NORMAL) !== 0))
      continue
    }
    each(record(r, flags, msgId, topic, origin, publisherId, r.view(bytesAt + at, bytes.length - at), bytes, str))
  }
}

/** The rest of a record after its payload or frame: groups, expiry, properties. */
function record(
  r: Reader, flags: number, msgId: number, topic: string, origin: string, publisherId: string, payload: Buffer, frame: Buffer | null, str: () => string,
): PackedEntry {
  const ng = r.u16()
  let groups: readonly string[] = NO_GROUPS
  if (ng > 0) {
    const list: string[] = []
    for (let i = 0; i < ng; i++) list.push(str())
    groups = list
  }
  const msg: BrokerMessage = { topic, payload, qos: (flags & 3) as QoS, retain: (flags & F_RETAIN) !== 0, origin, publisherId }
  if ((flags & F_EXPIRES) !== 0) msg.expiresAt = r.f64()
  if ((flags & F_PROPS) !== 0) msg.properties = unpackProps(r)
  return { msg, msgId, groups, normal: (flags & F_NORMAL) !== 0, frame }
}

function u16(buf: Buffer, o: number, n: number): number {
  buf[o] = n >>> 8
  buf[o + 1] = n & 0xff
  return o + 2
}

/** byte stores: Buffer#writeUInt32BE is a call with argument checks */
function u32(buf: Buffer, o: number, n: number): number {
  buf[o] = n >>> 24
  buf[o + 1] = (n >>> 16) & 0xff
  buf[o + 2] = (n >>> 8) & 0xff
  buf[o + 3] = n & 0xff
  return o + 4
}

function str16(buf: Buffer, o: number, s: string): number {
  const n = s.length === 0 ? 0 : buf.write(s, o + 2, 'utf8')
  if (n > 0xffff) throw new RangeError('string over 65,535 bytes')
  u16(buf, o, n)
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
  readonly #ab: ArrayBufferLike
  readonly #base: number

  constructor(readonly buf: Buffer) {
    this.#ab = buf.buffer
    this.#base = buf.byteOffset
  }

  /**
   * A view of buf[at, at + n): the bytes are not copied. Buffer.from on the batch's
   * ArrayBuffer, read once per batch: Buffer#subarray reads `.buffer` (a runtime call) per view,
   * and took 70-90 ns where this takes 50, for two views per record when frames are carried.
   */
  view(at: number, n: number): Buffer {
    return Buffer.from(this.#ab, this.#base + at, n)
  }

  #need(n: number): number {
    const at = this.o
    if (at + n > this.buf.length) throw new PackedBatchError('truncated record')
    this.o = at + n
    return at
  }

  u8(): number {
    return this.buf[this.#need(1)]!
  }

  /** the u16 at the read position, not consumed */
  peekU16(): number {
    const at = this.o
    if (at + 2 > this.buf.length) throw new PackedBatchError('truncated record')
    return (this.buf[at]! << 8) | this.buf[at + 1]!
  }

  u16(): number {
    const at = this.#need(2)
    return (this.buf[at]! << 8) | this.buf[at + 1]!
  }

  u32(): number {
    const at = this.#need(4)
    const b = this.buf
    return b[at]! * 0x100_0000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!)
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
    const n = this.u32()
    return this.view(this.#need(n), n)
  }
}

// Splits the byte stream into MQTT packets and decodes the hot ones (PUBLISH without
// properties, PUBACK/PUBREC/PUBREL/PUBCOMP, PINGREQ, the 2-byte DISCONNECT, the common
// CONNECT) directly from the bytes. Every other packet, and anything unusual about a hot one,
// goes to mqtt-packet's parser one whole packet at a time, so mqtt-packet stays the authority
// on the protocol and its errors.
//
//   chunk ─> [kept start of a frame + the bytes it misses] then the chunk's own frames:
//            frame: header byte | remaining length (1-4 bytes) | body
//              ├─ fast decode ─> packet object (a PUBLISH's bytes copied by slab, #copy)
//              └─ fallback ───> mqtt.parser().parse(frame) ─> 'packet' | 'error'

import { Buffer, isUtf8 } from 'node:buffer'
import type { IConnectPacket, IPublishPacket, Packet } from 'mqtt-packet'
import { varIntLength } from './encode.js'

export interface FrameSink {
  /** a decoded packet */
  packet(p: Packet): void
  /** a whole packet the fast path does not decode */
  fallback(frame: Buffer): void
  /** a frame whose length is over the limit, or a malformed length */
  error(reason: 'packet_too_large' | 'malformed_length'): void
  /** still accepting packets? (false once the connection closed) */
  readonly open: boolean
}

/**
 * A PUBLISH decoded by the fast path. `frame` is the packet's own bytes (a copy) when it is a
 * plain QoS 0 PUBLISH (no DUP, no retain, minimal length encoding): exactly what a subscriber
 * of the same protocol family gets, so it is sent as is (EncodeCache.prime).
 */
export type FastPublish = IPublishPacket & { frame: Buffer | undefined }

export class FrameReader {
  /**
   * The start of a frame that is not all in yet, as read. Only the bytes the frame still
   * misses are taken from the next read: joining the whole next read to it copied every read
   * once more at a high rate, where nearly every read ends inside a frame.
   */
  #parts: Buffer[] = []
  #partsLen = 0
  /** the kept frame's total length, 0 while its header is not all in */
  #need = 0
  /** body length of the frame whose header #header read last */
  #bodyLen = 0
  /** the last ASCII topic decoded on the fast path */
  #lastTopic = ''
  /** protocol version after CONNECT: 5.0 PUBLISH carries a property block */
  v5 = false

  /** the copy of `#src[#srcFrom, #srcFrom + #slab.length)` that frames are views of (see #copy) */
  #slab: Buffer | null = null
  #src: Buffer | null = null
  #srcFrom = 0

  constructor(readonly maxPacketSize: number) {}

  push(chunk: Buffer, sink: FrameSink): void {
    this.#src = null
    let pos = 0
    if (this.#partsLen > 0) {
      pos = this.#complete(chunk, sink)
      if (pos < 0) return
    }
    const n = chunk.length
    while (pos < n && sink.open) {
      const body = this.#header(chunk, pos, n, sink)
      if (body === REFUSED) return
      if (body === PARTIAL || n - body < this.#bodyLen) {
        this.#keep(chunk.subarray(pos), body === PARTIAL ? 0 : body - pos + this.#bodyLen)
        break
      }
      const end = body + this.#bodyLen
      this.#decode(chunk, pos, body, end, sink)
      pos = end
    }
    // a slab serves one read: an idle connection keeps none
    this.#src = null
    this.#slab = null
  }

  /**
   * The body's index of the frame at `pos`, with its length in #bodyLen; PARTIAL when the
   * header is not all in; REFUSED (reported to the sink) when it is malformed or too large.
   */
  #header(buf: Buffer, pos: number, n: number, sink: FrameSink): number {
    // remaining length: up to 4 bytes of 7 bits [MQTT-1.5.5]
    let len = 0
    let mul = 1
    let i = pos + 1
    for (let k = 0; k < 4; k++) {
      if (i >= n) return PARTIAL
      const b = buf[i++]!
      len += (b & 0x7f) * mul
      mul *= 128
      if ((b & 0x80) === 0) {
        if (i - pos + len > this.maxPacketSize) {
          sink.error('packet_too_large')
          return REFUSED
        }
        this.#bodyLen = len
        return i
      }
    }
    sink.error('malformed_length')
    return REFUSED
  }

  #keep(piece: Buffer, need: number): void {
    this.#parts.push(piece)
    this.#partsLen += piece.length
    this.#need = need
  }

  /** Completes the kept frame from the start of `chunk`: where the rest of `chunk` starts, or -1. */
  #complete(chunk: Buffer, sink: FrameSink): number {
    if (this.#need === 0) {
      // the header was cut: it lies within the kept bytes (at most 4) and the chunk's first 4
      const probe = Buffer.concat([...this.#parts, chunk.subarray(0, 4)])
      const body = this.#header(probe, 0, probe.length, sink)
      if (body === REFUSED) return -1
      if (body === PARTIAL) {
        this.#keep(chunk, 0)
        return -1
      }
      this.#need = body + this.#bodyLen
    }
    const missing = this.#need - this.#partsLen
    if (chunk.length < missing) {
      this.#keep(chunk, this.#need)
      return -1
    }
    this.#parts.push(chunk.subarray(0, missing))
    const frame = Buffer.concat(this.#parts, this.#need)
    this.#parts = []
    this.#partsLen = 0
    this.#need = 0
    // the joined frame is a copy already: it is its own slab
    this.#slab = this.#src = frame
    this.#srcFrom = 0
    const body = this.#header(frame, 0, frame.length, sink)
    this.#decode(frame, 0, body, frame.length, sink)
    return missing
  }

  /**
   * A copy of `buf[start, end)` that the packet may keep after this read. Frames are copied
   * SLAB bytes of the read at a time and handed out as views: one copy per slab instead of an
   * allocation and a copy per frame (those were a third of decoding a small PUBLISH). A kept
   * frame keeps its slab alive, as a Buffer from Node's own pool keeps its 8 KiB pool.
   */
  #copy(buf: Buffer, start: number, end: number): Buffer {
    let slab = this.#slab
    if (this.#src !== buf || slab === null || start < this.#srcFrom || end > this.#srcFrom + slab.length) {
      if (end - start > SLAB) return Buffer.from(buf.subarray(start, end))
      // from Node's pool when small (one PUBLISH per read, at a low rate)
      slab = Buffer.allocUnsafe(Math.min(SLAB, buf.length - start))
      buf.copy(slab, 0, start, start + slab.length)
      this.#slab = slab
      this.#src = buf
      this.#srcFrom = start
    }
    return slab.subarray(start - this.#srcFrom, end - this.#srcFrom)
  }

  #decode(buf: Buffer, start: number, body: number, end: number, sink: FrameSink): void {
    const h = buf[start]!
    const type = h >> 4
    if (type === 3) {
      const qos = (h >> 1) & 3
      if (qos === 3 || end - body < 2) return sink.fallback(buf.subarray(start, end))
      const tlen = (buf[body]! << 8) | buf[body + 1]!
      let p = body + 2 + tlen
      if (p + (qos > 0 ? 2 : 0) > end) return sink.fallback(buf.subarray(start, end))
      // A client usually repeats its topic: compared with the last (ASCII) one, the string is
      // reused, with no decode and its hash already computed for the lookups that follow.
      let topic = this.#lastTopic
      if (!sameAscii(buf, body + 2, tlen, topic)) {
        if (isAscii(buf, body + 2, p)) {
          topic = buf.toString('latin1', body + 2, p)
          this.#lastTopic = topic
        } else {
          if (!isUtf8(buf.subarray(body + 2, p))) return sink.fallback(buf.subarray(start, end))
          topic = buf.toString('utf8', body + 2, p)
        }
      }
      let messageId: number | undefined
      if (qos > 0) {
        messageId = (buf[p]! << 8) | buf[p + 1]!
        p += 2
      }
      if (this.v5) {
        // properties: only the empty block is decoded here
        if (p >= end || buf[p] !== 0) return sink.fallback(buf.subarray(start, end))
        p++
      }
      // copies (#copy): the payload may outlive this chunk (queues, retained); a plain QoS 0
      // frame is already the PUBLISH its subscribers get (FastPublish.frame), and the payload a
      // view of it; anything else needs its payload only
      const frame = h === 0x30 && body - start - 1 === varIntLength(end - body) ? this.#copy(buf, start, end) : undefined
      const packet: FastPublish = {
        cmd: 'publish',
        qos: qos as 0 | 1 | 2,
        dup: (h & 8) !== 0,
        retain: (h & 1) !== 0,
        topic,
        payload: frame !== undefined ? frame.subarray(p - start) : this.#copy(buf, p, end),
        messageId,
        length: end - body,
        frame,
      }
      sink.packet(packet)
      return
    }
    // PUBACK 0x40, PUBREC 0x50, PUBREL 0x62, PUBCOMP 0x70 without reason code
    if ((h === 0x40 || h === 0x50 || h === 0x62 || h === 0x70) && end - body === 2) {
      const cmd = h === 0x40 ? 'puback' : h === 0x50 ? 'pubrec' : h === 0x62 ? 'pubrel' : 'pubcomp'
      sink.packet({ cmd, messageId: (buf[body]! << 8) | buf[body + 1]!, length: 2 } as Packet)
      return
    }
    if (h === 0xc0 && end === body) {
      sink.packet({ cmd: 'pingreq', length: 0 } as Packet)
      return
    }
    // the 2-byte DISCONNECT (5.0: reason 0x00, no properties [MQTT-3.14.2-1]); building
    // mqtt-packet's parser for it was most of the cost of a client's goodbye
    if (h === 0xe0 && end === body) {
      sink.packet((this.v5 ? { cmd: 'disconnect', length: 0, reasonCode: 0 } : { cmd: 'disconnect', length: 0 }) as Packet)
      return
    }
    if (h === 0x10) {
      const connect = decodeConnect(buf, body, end)
      if (connect !== null) return sink.packet(connect)
    }
    sink.fallback(buf.subarray(start, end))
  }
}

/**
 * The common CONNECT read in place: "MQTT" level 4 or 5 (5.0 without properties) or "MQIsdp"
 * level 3, no will, ASCII client ID and user name, nothing after the last field. Anything else
 * returns null and goes to mqtt-packet, which decides and words the error; what is accepted
 * here is exactly what mqtt-packet accepts, read the same way [MQTT-3.1.2-1, MQTT-3.1.2-3].
 * Building mqtt-packet's parser state per CONNECT was the largest JS cost of a connect.
 */
export function decodeConnect(buf: Buffer, p: number, end: number): IConnectPacket | null {
  const length = end - p
  let version: 3 | 4 | 5
  if (length >= 12 && buf[p] === 0 && buf[p + 1] === 4 && buf[p + 2] === 0x4d && buf[p + 3] === 0x51 && buf[p + 4] === 0x54 && buf[p + 5] === 0x54) {
    const level = buf[p + 6]!
    if (level !== 4 && level !== 5) return null
    version = level
    p += 7
  } else if (
    length >= 14 && buf[p] === 0 && buf[p + 1] === 6 && buf[p + 2] === 0x4d && buf[p + 3] === 0x51 && buf[p + 4] === 0x49 &&
    buf[p + 5] === 0x73 && buf[p + 6] === 0x64 && buf[p + 7] === 0x70 && buf[p + 8] === 3
  ) {
    version = 3
    p += 9
  } else return null
  const flags = buf[p]!
  // reserved bit 0 [MQTT-3.1.2-3]; will flag, will QoS and will retain: mqtt-packet's path
  if ((flags & 0x3d) !== 0) return null
  const keepalive = (buf[p + 1]! << 8) | buf[p + 2]!
  p += 3
  if (version === 5) {
    // an empty property block only
    if (p >= end || buf[p] !== 0) return null
    p++
  }
  const idEnd = asciiEnd(buf, p, end)
  if (idEnd < 0) return null
  const clientId = buf.toString('latin1', p + 2, idEnd)
  p = idEnd
  let username: string | undefined
  let password: Buffer | undefined
  if ((flags & 0x80) !== 0) {
    const e = asciiEnd(buf, p, end)
    if (e < 0) return null
    username = buf.toString('latin1', p + 2, e)
    p = e
  }
  if ((flags & 0x40) !== 0) {
    if (p + 2 > end) return null
    const e = p + 2 + ((buf[p]! << 8) | buf[p + 1]!)
    if (e > end) return null
    password = Buffer.from(buf.subarray(p + 2, e))
    p = e
  }
  if (p !== end) return null
  const packet: IConnectPacket = {
    cmd: 'connect',
    protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clean: (flags & 0x02) !== 0,
    keepalive,
    clientId,
    length,
  }
  if (username !== undefined) packet.username = username
  if (password !== undefined) packet.password = password
  return packet
}

/** End of the length-prefixed string at `p` if it lies inside the packet and is ASCII, else -1. */
function asciiEnd(buf: Buffer, p: number, end: number): number {
  if (p + 2 > end) return -1
  const e = p + 2 + ((buf[p]! << 8) | buf[p + 1]!)
  if (e > end) return -1
  for (let i = p + 2; i < e; i++) if (buf[i]! > 0x7f) return -1
  return e
}

/** FrameReader.#header: the header is not all in */
const PARTIAL = -1
/** FrameReader.#header: the frame was refused (the sink was told) */
const REFUSED = -2

/** bytes of a read copied at once for the frames in them (#copy) */
const SLAB = 8 * 1024

/** Whether buf[from, to) is all ASCII. */
function isAscii(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i]! > 0x7f) return false
  return true
}

/** Whether buf[from, from + n) is `ascii` (a string of ASCII characters only). */
function sameAscii(buf: Buffer, from: number, n: number, ascii: string): boolean {
  if (ascii.length !== n) return false
  for (let i = 0; i < n; i++) if (buf[from + i] !== ascii.charCodeAt(i)) return false
  return true
}

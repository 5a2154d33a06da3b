// Hand-encoded PUBLISH frames for the hot path. A frame per publisher is laid out once as a
// template; each message is a copy of the template with the packet identifier and the
// payload fields patched in place, so encoding costs one memcpy and three writes.

import { OFF_PUB, OFF_SEQ, OFF_SENT_AT } from './payload.js'

export type Qos = 0 | 1 | 2
export type ProtocolVersion = 4 | 5

export interface PublishTemplate {
  readonly frame: Buffer
  /** offset of the 2-byte packet identifier, or -1 for QoS 0 */
  readonly pidOffset: number
  readonly payloadOffset: number
}

export function encodeRemainingLength(len: number): number[] {
  const out: number[] = []
  do {
    let b = len % 128
    len = Math.floor(len / 128)
    if (len > 0) b |= 0x80
    out.push(b)
  } while (len > 0)
  return out
}

export function publishTemplate(topic: string, qos: Qos, protocol: ProtocolVersion, payloadSize: number, pubIndex: number): PublishTemplate {
  const topicBytes = Buffer.from(topic, 'utf8')
  const pidLen = qos > 0 ? 2 : 0
  const propsLen = protocol === 5 ? 1 : 0 // [MQTT-3.3.2.3] v5: property length 0, no properties
  const remaining = 2 + topicBytes.length + pidLen + propsLen + payloadSize
  const rl = encodeRemainingLength(remaining)
  const frame = Buffer.alloc(1 + rl.length + remaining)
  let o = 0
  frame[o++] = 0x30 | (qos << 1) // PUBLISH, DUP=0, RETAIN=0
  for (const b of rl) frame[o++] = b
  frame.writeUInt16BE(topicBytes.length, o)
  o += 2
  topicBytes.copy(frame, o)
  o += topicBytes.length
  const pidOffset = qos > 0 ? o : -1
  o += pidLen
  o += propsLen // already 0
  frame.writeUInt32BE(pubIndex, o + OFF_PUB)
  return { frame, pidOffset, payloadOffset: o }
}

/** Writes one message at `off` in `out` (which must have room for `t.frame.length` bytes). */
export function stampPublish(t: PublishTemplate, out: Buffer, off: number, pid: number, seq: number, sentAt: number): void {
  t.frame.copy(out, off)
  if (t.pidOffset >= 0) out.writeUInt16BE(pid, off + t.pidOffset)
  const p = off + t.payloadOffset
  out.writeUInt32BE(seq, p + OFF_SEQ)
  out.writeDoubleLE(sentAt, p + OFF_SENT_AT)
}

/** Offset of the payload inside a PUBLISH body [bodyStart, bodyEnd) as the framer hands it out. */
export function payloadStart(buf: Buffer, byte0: number, bodyStart: number, protocol: ProtocolVersion): number {
  let p = bodyStart + 2 + buf.readUInt16BE(bodyStart)
  if ((byte0 & 0x06) !== 0) p += 2
  if (protocol === 5) {
    // property length is a variable byte integer; skip it and the properties
    let len = 0
    let mul = 1
    let b: number
    do {
      b = buf[p++]!
      len += (b & 0x7f) * mul
      mul *= 128
    } while ((b & 0x80) !== 0)
    p += len
  }
  return p
}

/** Packet identifier of a QoS 1/2 PUBLISH body. */
export function publishPid(buf: Buffer, bodyStart: number): number {
  return buf.readUInt16BE(bodyStart + 2 + buf.readUInt16BE(bodyStart))
}

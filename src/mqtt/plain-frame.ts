// A plain QoS 0 PUBLISH frame: header 0x30 (no DUP, no retain), minimal remaining length,
// topic, an empty property block in 5.0, payload. It is what every subscriber of that protocol
// family receives for a QoS 0 delivery, so a worker passes the publisher's frame on as it came,
// and a cross-worker batch carries it so the receiving worker does not encode it again.
//
//   0x30 | remaining length (1-4 bytes) | topic length:u16 | topic | [0x00 in 5.0] | payload

import type { Buffer } from 'node:buffer'

/** Offset of the topic length field: after the header byte and the remaining length. */
function topicAt(frame: Buffer): number {
  let p = 1
  while (p < 5 && p < frame.length && (frame[p]! & 0x80) !== 0) p++
  return p + 1
}

/** Whether `frame`, a plain QoS 0 frame carrying `payloadLength` bytes, is in the 5.0 form. */
export function plainFrameIsV5(frame: Buffer, payloadLength: number): boolean {
  const t = topicAt(frame)
  const v3 = t + 2 + ((frame[t]! << 8) | frame[t + 1]!) + payloadLength
  return frame.length === v3 + 1
}

/**
 * Offset of the payload in `frame` if it is a well-formed plain QoS 0 frame of the given form
 * (its header, remaining length and topic length agree with its size), else -1.
 */
export function plainFramePayloadAt(frame: Buffer, v5: boolean): number {
  if (frame.length < 4 || frame[0] !== 0x30) return -1
  let remaining = 0
  let mul = 1
  let p = 1
  for (;;) {
    if (p >= frame.length || p > 4) return -1
    const b = frame[p++]!
    remaining += (b & 0x7f) * mul
    mul *= 128
    if ((b & 0x80) === 0) break
  }
  if (remaining !== frame.length - p || p + 2 > frame.length) return -1
  const at = p + 2 + ((frame[p]! << 8) | frame[p + 1]!) + (v5 ? 1 : 0)
  if (at > frame.length || (v5 && frame[at - 1] !== 0)) return -1
  return at
}

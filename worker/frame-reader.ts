// Splits the byte stream into MQTT packets and decodes the hot ones (PUBLISH without
// properties, PUBACK/PUBREC/PUBREL/PUBCOMP, PINGREQ) directly from the bytes. Every other
// packet, and anything unusual about a hot one, goes to mqtt-packet's parser one whole packet
// at a time, so mqtt-packet stays the authority on the protocol and its errors.
//
//   chunk ─> [leftover + chunk] ─> frame: header byte | remaining length (1-4 bytes) | body
//                                   ├─ fast decode ─> packet object
//                                   └─ fallback ───> mqtt.parser().parse(frame) ─> 'packet' | 'error'

import { isUtf8 } from 'node:buffer'
import type { Packet } from 'mqtt-packet'

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

export class FrameReader {
  #left: Buffer | null = null
  /** protocol version after CONNECT: 5.0 PUBLISH carries a property block */
  v5 = false

  constructor(readonly maxPacketSize: number) {}

  push(chunk: Buffer, sink: FrameSink): void {
    let buf = chunk
    if (this.#left !== null) {
      buf = Buffer.concat([this.#left, chunk])
      this.#left = null
    }
    const n = buf.length
    let pos = 0
    while (pos < n && sink.open) {
      // remaining length: up to 4 bytes of 7 bits [MQTT-1.5.5]
      if (n - pos < 2) break
      let len = 0
      let mul = 1
      let i = pos + 1
      let done = false
      for (let k = 0; k < 4 && i < n; k++) {
        const b = buf[i++]!
        len += (b & 0x7f) * mul
        mul *= 128
        if ((b & 0x80) === 0) {
          done = true
          break
        }
      }
      if (!done) {
        if (i - pos - 1 >= 4) return sink.error('malformed_length')
        break
      }
      const total = i - pos + len
      if (total > this.maxPacketSize) return sink.error('packet_too_large')
      if (n - i < len) break
      this.#decode(buf, pos, i, i + len, sink)
      pos = i + len
    }
    if (pos < n && sink.open) this.#left = pos === 0 && buf !== chunk ? buf : buf.subarray(pos)
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
      const topicBytes = buf.subarray(body + 2, p)
      if (!isUtf8(topicBytes)) return sink.fallback(buf.subarray(start, end))
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
      // copy: the payload may outlive this chunk (queues, retained)
      const payload = Buffer.allocUnsafe(end - p)
      buf.copy(payload, 0, p, end)
      sink.packet({
        cmd: 'publish',
        qos: qos as 0 | 1 | 2,
        dup: (h & 8) !== 0,
        retain: (h & 1) !== 0,
        topic: topicBytes.toString('utf8'),
        payload,
        messageId,
        length: end - body,
      } as Packet)
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
    sink.fallback(buf.subarray(start, end))
  }
}

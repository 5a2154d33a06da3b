// Minimal MQTT framer for the generator's hot path: splits a byte stream into whole packets
// without allocating per packet. mqtt-packet's parser builds an object per packet, which costs
// more than the broker work we are trying to measure at several hundred thousand packets/s.
//
//   | byte0: type<<4 | flags | remaining length (1-4 bytes, 7 bits each) | body ... |
//
// The callback gets the buffer and the body's [start, end) so no slice is made; only a packet
// split across two chunks is copied once (concat of the tail and the next chunk).

export type FrameHandler = (buf: Buffer, byte0: number, bodyStart: number, bodyEnd: number) => void

export class FramerError extends Error {}

export class Framer {
  #rest: Buffer | null = null
  readonly #maxPacket: number

  constructor(maxPacket = 16 * 1024 * 1024) {
    this.#maxPacket = maxPacket
  }

  /** Calls `on` once per whole packet in `chunk` (plus any carried-over tail). */
  push(chunk: Buffer, on: FrameHandler): void {
    const buf = this.#rest === null ? chunk : Buffer.concat([this.#rest, chunk])
    this.#rest = null
    const n = buf.length
    let i = 0
    while (i < n) {
      if (n - i < 2) break
      // [MQTT-2.2.3] remaining length: up to 4 bytes, low 7 bits first, high bit = continuation
      let len = 0
      let mul = 1
      let p = i + 1
      let complete = false
      for (let k = 0; k < 4 && p < n; k++) {
        const b = buf[p++]!
        len += (b & 0x7f) * mul
        if ((b & 0x80) === 0) {
          complete = true
          break
        }
        mul *= 128
        if (k === 3) throw new FramerError('malformed remaining length')
      }
      if (!complete) break
      if (len > this.#maxPacket) throw new FramerError(`packet of ${len} bytes exceeds ${this.#maxPacket}`)
      if (p + len > n) break
      on(buf, buf[i]!, p, p + len)
      i = p + len
    }
    if (i < n) this.#rest = buf.subarray(i)
  }
}

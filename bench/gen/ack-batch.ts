// Acknowledgements the generator owes the broker (PUBACK, PUBREC, PUBREL, PUBCOMP), written
// once per turn of the event loop instead of once per received chunk. A broker that sends
// one packet per TCP segment (Mosquitto) otherwise costs the generator a write per message,
// and the generator, not the broker, becomes the bottleneck. The delay is at most one loop
// turn (setImmediate runs right after the poll phase that read the chunk).

import type net from 'node:net'

export class AckBatch {
  readonly #socket: net.Socket
  #bytes: number[] = []
  #scheduled = false

  constructor(socket: net.Socket) {
    this.#socket = socket
  }

  /** Queues a 4-byte ack: `byte0` (type and flags) with remaining length 2 and the packet id. */
  push(byte0: number, pid: number): void {
    this.#bytes.push(byte0, 2, pid >> 8, pid & 0xff)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#flush)
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false
    if (this.#bytes.length === 0 || this.#socket.destroyed) return
    this.#socket.write(Buffer.from(this.#bytes))
    this.#bytes = []
  }
}

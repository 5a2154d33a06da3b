// A bare MQTT connection over a TCP socket, for the cases where a real client library hides the
// wire: packets are generated and parsed with mqtt-packet (or written as raw bytes), every
// received packet is kept in order, and the test awaits the next packet or the close.

import net from 'node:net'
import mqtt, { type Packet } from 'mqtt-packet'
import type { Target } from './target.js'

export type ProtocolVersion = 3 | 4 | 5

export interface RawOptions {
  protocolVersion?: ProtocolVersion
  /** default timeout for `next()` / `closed()` */
  timeoutMs?: number
}

// mqtt-packet's typings are a union of interfaces; cases build packets as plain objects.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPacket = Packet & Record<string, any>

export class RawClient {
  readonly socket: net.Socket
  readonly protocolVersion: ProtocolVersion
  /** every packet received, in order */
  readonly received: AnyPacket[] = []
  /** set when the parser rejected what the broker sent */
  parseError?: Error
  #cursor = 0
  #waiters: (() => void)[] = []
  #closed = false
  #closePromise: Promise<void>
  #timeoutMs: number

  private constructor(socket: net.Socket, opts: RawOptions) {
    this.socket = socket
    this.protocolVersion = opts.protocolVersion ?? 4
    this.#timeoutMs = opts.timeoutMs ?? 10000
    const parser = mqtt.parser({ protocolVersion: this.protocolVersion })
    parser.on('packet', (p: Packet) => {
      this.received.push(p as AnyPacket)
      this.#wake()
    })
    parser.on('error', (err: Error) => {
      this.parseError = err
      this.#wake()
    })
    socket.on('data', (d: Buffer) => parser.parse(d))
    socket.on('error', () => {}) // resets are expected in bad-input cases; `closed()` reports them
    this.#closePromise = new Promise((resolve) => {
      socket.once('close', () => {
        this.#closed = true
        this.#wake()
        resolve()
      })
    })
  }

  static open(target: Pick<Target, 'host' | 'port'>, opts: RawOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port })
      socket.setNoDelay(true)
      socket.once('connect', () => resolve(new RawClient(socket, opts)))
      socket.once('error', reject)
    })
  }

  /** Opens a socket, sends CONNECT (protocol version from opts) and awaits the CONNACK. */
  static async connect(
    target: Pick<Target, 'host' | 'port'>,
    connect: Partial<AnyPacket> & { clientId: string },
    opts: RawOptions = {},
  ): Promise<{ raw: RawClient; connack: AnyPacket }> {
    const raw = await RawClient.open(target, opts)
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: raw.protocolVersion, clean: true, keepalive: 60, ...connect })
    const connack = await raw.next('connack')
    return { raw, connack }
  }

  get isClosed(): boolean {
    return this.#closed
  }

  send(packet: Partial<AnyPacket>): void {
    this.socket.write(mqtt.generate(packet as Packet, { protocolVersion: this.protocolVersion }))
  }

  sendBytes(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes))
  }

  /**
   * The next received packet (after those already consumed) of the given type, skipping
   * others only if `skip` is true. Rejects on timeout or when the connection closes first.
   */
  async next(cmd?: string | ((p: AnyPacket) => boolean), opts: { timeoutMs?: number; skip?: boolean } = {}): Promise<AnyPacket> {
    const match = typeof cmd === 'string' ? (p: AnyPacket) => p.cmd === cmd : cmd ?? (() => true)
    const deadline = Date.now() + (opts.timeoutMs ?? this.#timeoutMs)
    for (;;) {
      while (this.#cursor < this.received.length) {
        const p = this.received[this.#cursor++]!
        if (match(p)) return p
        if (!opts.skip) throw new Error(`expected ${String(cmd)}, got ${describe(p)}`)
      }
      if (this.#closed) throw new Error(`connection closed while waiting for ${String(cmd)}; got ${this.received.map(describe).join(', ')}`)
      if (this.parseError) throw this.parseError
      await this.#wait(deadline, `${String(cmd)}`)
    }
  }

  /** Packets received and not yet consumed by `next()`. */
  unconsumed(): AnyPacket[] {
    return this.received.slice(this.#cursor)
  }

  /**
   * Round trip on this socket: PINGREQ, then everything the broker sent before its PINGRESP.
   * A broker writes to one socket in order, so whatever it was going to send in reaction to
   * earlier packets (ours, or another client's whose acknowledgement we already saw) comes
   * before the PINGRESP. This is the marker used to show that something did NOT arrive.
   */
  async sync(): Promise<AnyPacket[]> {
    this.send({ cmd: 'pingreq' })
    const before: AnyPacket[] = []
    for (;;) {
      const p = await this.next(undefined, { skip: true })
      if (p.cmd === 'pingresp') return before
      before.push(p)
    }
  }

  /** Resolves when the broker closed the connection; rejects after the timeout. */
  async closed(timeoutMs = this.#timeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.#closed) await this.#wait(deadline, 'close')
  }

  /** Packets received before the broker closed the connection (consumes them). */
  async closedAfter(timeoutMs = this.#timeoutMs): Promise<AnyPacket[]> {
    await this.closed(timeoutMs)
    const rest = this.received.slice(this.#cursor)
    this.#cursor = this.received.length
    return rest
  }

  /** Ends the connection abruptly, without DISCONNECT (a network failure to the broker). */
  destroy(): Promise<void> {
    this.socket.destroy()
    return this.#closePromise
  }

  /** Sends DISCONNECT (optionally with a reason/properties) and closes our side. */
  async disconnect(packet: Partial<AnyPacket> = {}): Promise<void> {
    if (this.#closed) return
    this.send({ cmd: 'disconnect', ...packet })
    this.socket.end()
    await this.#closePromise
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  #wait(deadline: number, what: string): Promise<void> {
    const ms = deadline - Date.now()
    if (ms <= 0) return Promise.reject(new Error(`timed out waiting for ${what}; received: ${this.received.map(describe).join(', ')}`))
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done)
        reject(new Error(`timed out waiting for ${what}; received: ${this.received.map(describe).join(', ')}`))
      }, ms)
      const done = (): void => {
        clearTimeout(t)
        resolve()
      }
      this.#waiters.push(done)
    })
  }
}

export function describe(p: AnyPacket): string {
  const parts: string[] = [p.cmd]
  if (p.topic !== undefined) parts.push(`topic=${JSON.stringify(p.topic)}`)
  if (p.messageId !== undefined) parts.push(`id=${p.messageId}`)
  if (p.reasonCode !== undefined) parts.push(`rc=0x${Number(p.reasonCode).toString(16)}`)
  if (p.returnCode !== undefined) parts.push(`rc=${p.returnCode}`)
  if (p.granted !== undefined) parts.push(`granted=${JSON.stringify(p.granted)}`)
  return parts.join(' ')
}

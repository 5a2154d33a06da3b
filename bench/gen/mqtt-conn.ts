// One raw TCP connection of the generator. Control packets (CONNECT, SUBSCRIBE and their
// acks) go through mqtt-packet; once a client is set up, the publisher/subscriber roles take
// over the frame stream with their own lean handlers (see load.ts).

import net from 'node:net'
import * as mqtt from 'mqtt-packet'
import { Framer, type FrameHandler } from './framer.js'
import type { ProtocolVersion, Qos } from './publish-frame.js'

export interface Endpoint {
  host: string
  port: number
  /** loopback source address, to spread many connections over several 4-tuples */
  localAddress?: string
}

// [MQTT-3.2.2.3] 3.1.1 CONNACK return codes (5.0 reason codes are >= 0x80)
const RETURN_CODES = ['accepted', 'unacceptable protocol version', 'identifier rejected', 'server unavailable', 'bad user name or password', 'not authorized']

export class ConnectRefused extends Error {
  constructor(readonly returnCode: number, clientId: string) {
    super(`CONNACK ${returnCode}${RETURN_CODES[returnCode] ? ` (${RETURN_CODES[returnCode]})` : ''} for ${clientId}`)
  }
}

/** CONNACK codes that mean "this client belongs to another server" (ringmq's ring check). */
export function isUseAnotherServer(code: number, protocol: ProtocolVersion): boolean {
  return protocol === 5 ? code === 0x9c || code === 0x9d : code === 3
}

export class MqttConn {
  readonly socket: net.Socket
  readonly protocol: ProtocolVersion
  readonly #framer = new Framer()
  #hot: FrameHandler | null = null
  #parser: mqtt.Parser
  #waiters: { cmd: string; resolve: (p: mqtt.Packet) => void; reject: (e: Error) => void }[] = []
  #closed: Error | null = null

  private constructor(socket: net.Socket, protocol: ProtocolVersion) {
    this.socket = socket
    this.protocol = protocol
    this.#parser = mqtt.parser({ protocolVersion: protocol })
    this.#parser.on('packet', (p: mqtt.Packet) => this.#onControl(p))
    this.#parser.on('error', (e: Error) => this.#fail(e))
    const onFrame: FrameHandler = (buf, byte0, s, e) => {
      if (this.#hot !== null) this.#hot(buf, byte0, s, e)
      else this.control(buf, byte0, s, e)
    }
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#framer.push(chunk, onFrame)
      } catch (err) {
        this.#fail(err as Error)
        socket.destroy()
      }
    })
    socket.on('error', (e) => this.#fail(e))
    socket.on('close', () => this.#fail(new Error('connection closed')))
  }

  /** Opens a TCP connection (no MQTT yet). */
  static open(ep: Endpoint, protocol: ProtocolVersion, timeoutMs = 10_000): Promise<MqttConn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: ep.host, port: ep.port, localAddress: ep.localAddress, noDelay: true })
      const t = setTimeout(() => {
        socket.destroy()
        reject(new Error(`connect to ${ep.host}:${ep.port} timed out`))
      }, timeoutMs)
      socket.once('error', (e) => {
        clearTimeout(t)
        reject(e)
      })
      socket.once('connect', () => {
        clearTimeout(t)
        resolve(new MqttConn(socket, protocol))
      })
    })
  }

  get closed(): boolean {
    return this.#closed !== null
  }

  /** Routes every following frame to `h` (hot path); `h` hands non-hot frames to `control`. */
  setHotHandler(h: FrameHandler | null): void {
    this.#hot = h
  }

  /** Parses one frame with mqtt-packet (control path). */
  control(buf: Buffer, byte0: number, s: number, e: number): void {
    // re-frame: the parser wants the fixed header too
    const rl: number[] = []
    let len = e - s
    do {
      let b = len % 128
      len = Math.floor(len / 128)
      if (len > 0) b |= 0x80
      rl.push(b)
    } while (len > 0)
    this.#parser.parse(Buffer.concat([Buffer.from([byte0, ...rl]), buf.subarray(s, e)]))
  }

  async connect(clientId: string, keepalive = 0, clean = true): Promise<void> {
    const connack = (await this.request(
      { cmd: 'connect', clientId, protocolVersion: this.protocol, protocolId: 'MQTT', clean, keepalive },
      'connack',
    )) as mqtt.IConnackPacket
    const code = (this.protocol === 5 ? connack.reasonCode : connack.returnCode) ?? 0
    if (code !== 0) throw new ConnectRefused(code, clientId)
  }

  async subscribe(topic: string, qos: Qos, messageId: number): Promise<void> {
    const suback = (await this.request({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] }, 'suback')) as mqtt.ISubackPacket
    const g = suback.granted[0] as number
    if (typeof g !== 'number' || g >= 0x80) throw new Error(`subscription to ${topic} refused (${String(g)})`)
  }

  request(packet: mqtt.Packet, expect: string): Promise<mqtt.Packet> {
    const reply = this.next(expect)
    this.socket.write(mqtt.generate(packet, { protocolVersion: this.protocol }))
    return reply
  }

  /** The next control-path packet of type `cmd` (register before it can arrive); rejects after `timeoutMs`. */
  next(cmd: string, timeoutMs = 10_000): Promise<mqtt.Packet> {
    if (this.#closed) return Promise.reject(this.#closed)
    return new Promise((resolve, reject) => {
      const w = {
        cmd,
        resolve: (p: mqtt.Packet) => {
          clearTimeout(t)
          resolve(p)
        },
        reject: (e: Error) => {
          clearTimeout(t)
          reject(e)
        },
      }
      // a server that accepts TCP but never answers must not hang the bench
      const t = setTimeout(() => {
        const i = this.#waiters.indexOf(w)
        if (i >= 0) this.#waiters.splice(i, 1)
        reject(new Error(`no ${cmd.toUpperCase()} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiters.push(w)
    })
  }

  /** Sends DISCONNECT and closes; resolves when the socket is closed. */
  close(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve()
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve())
      if (!this.#closed) this.socket.end(mqtt.generate({ cmd: 'disconnect' }, { protocolVersion: this.protocol }))
      // a broker that does not close its side promptly is not our problem at teardown
      setTimeout(() => this.socket.destroy(), 2000).unref()
    })
  }

  #onControl(p: mqtt.Packet): void {
    const i = this.#waiters.findIndex((w) => w.cmd === p.cmd)
    if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(p)
    else if (p.cmd === 'disconnect') this.#fail(new Error(`server sent DISCONNECT ${(p as mqtt.IDisconnectPacket).reasonCode ?? ''}`))
  }

  #fail(e: Error): void {
    if (this.#closed === null) this.#closed = e
    for (const w of this.#waiters.splice(0)) w.reject(e)
  }
}

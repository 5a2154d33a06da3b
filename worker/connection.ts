// One client connection: bytes in through the FrameReader (mqtt-packet for the unusual
// packets), packets out through a per-event-loop-turn write batch, keepalive, topic aliases,
// packet size limits, and the connection's lifecycle. Protocol logic lives in handlers/; this
// file only moves bytes. Every connect pays for what is built here, so nothing per connection
// is a closure or a timer: listeners are shared functions, CONNECT deadlines and keepalive are
// broker-wide queues.
//
//   socket 'data' ─> FrameReader (hot packets) / mqtt-packet parser (the rest) ─> dispatch() ─ switch (packet.cmd) ─> handlers/<packet>.ts
//   handlers ─> write()/sendPublish() ─> out batch ─> one socket.write per turn (Broker.flush)

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import mqtt, { type Packet, type Parser } from 'mqtt-packet'

/** mqtt-packet's parser keeps its options (the protocol version) in `settings`. */
type SettingsParser = Parser & { settings: { protocolVersion?: number } }
import type { BrokerMessage, QoS } from '../src/mqtt/message.js'
import type { Logger } from '../src/log.js'
import type { Broker, PendingWill } from './broker.js'
import { EncodeCache, encodePlainPublish, encodeV5Publish, v5Properties, withPacketId } from './encode.js'
import type { Session } from './session.js'
import { handleConnect } from './handlers/connect.js'
import { handlePublish } from './handlers/publish.js'
import { handlePuback, handlePubrec, handlePubrel, handlePubcomp } from './handlers/acks.js'
import { handleSubscribe } from './handlers/subscribe.js'
import { handleUnsubscribe } from './handlers/unsubscribe.js'
import { handleDisconnect } from './handlers/disconnect.js'
import { RC } from './reason-codes.js'
import { FrameReader, type FrameSink } from './frame-reader.js'

export enum ConnState {
  /** waiting for CONNECT */
  New,
  /** CONNECT received, CONNACK not sent yet (store/cluster work in flight) */
  Connecting,
  Connected,
  Closed,
}

const PINGRESP = Buffer.from([0xd0, 0x00])

/**
 * A 4-byte PUBACK/PUBREC/PUBREL/PUBCOMP. Written byte by byte: Buffer.from(array) walks the
 * array through the generic typed-array copy, several times the cost of these four stores.
 */
function ackFrame(type: number, packetId: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b[0] = type
  b[1] = 0x02
  b[2] = packetId >> 8
  b[3] = packetId & 0xff
  return b
}

// Socket listeners shared by every connection (no closures per connection); the socket
// carries its Connection until it closes.
const CONN = Symbol('ringmq.connection')
type ConnSocket = Socket & { [CONN]?: Connection | undefined }
function onSocketData(this: ConnSocket, chunk: Buffer): void {
  this[CONN]?.onData(chunk)
}
function onSocketError(this: ConnSocket, err: Error): void {
  this[CONN]?.close('socket_error', err)
}
function onSocketClose(this: ConnSocket): void {
  this[CONN]?.socketClosed()
}
function onSocketDrain(this: ConnSocket): void {
  this[CONN]?.session?.drain()
}

/**
 * How often idle connections are looked for. A read only sets a flag (no clock call per read);
 * the sweep turns it into a time, so a silent client is closed at most twice this late.
 */
const KEEPALIVE_SWEEP_MS = 500

/**
 * Keepalive checks of one broker: one interval timer walks the connections that asked for a
 * keepalive, instead of a timer per connection re-armed on activity. A connection heard from
 * since the last sweep gets that sweep's time as its last activity (never earlier than the
 * real one), so a client silent for 1.5 x its keepalive is closed within 2 x KEEPALIVE_SWEEP_MS
 * after that, never before [MQTT-3.1.2-24].
 */
class KeepaliveSweep {
  #conns = new Set<Connection>()
  #timer: NodeJS.Timeout | null = null

  add(conn: Connection): void {
    this.#conns.add(conn)
    if (this.#timer === null) {
      this.#timer = setInterval(this.#sweep, KEEPALIVE_SWEEP_MS)
      // open connections keep the process alive, not their keepalive checks
      this.#timer.unref()
    }
  }

  delete(conn: Connection): void {
    if (!this.#conns.delete(conn) || this.#conns.size > 0 || this.#timer === null) return
    clearInterval(this.#timer)
    this.#timer = null
  }

  #sweep = (): void => {
    const now = Date.now()
    for (const c of this.#conns) {
      if (c.heard) {
        c.heard = false
        c.lastActivity = now
      } else if (now - c.lastActivity >= c.keepaliveMs * 1.5) c.keepaliveExpired()
    }
  }
}

/**
 * CONNECT deadlines of one broker. Every connection gets the same timeout, so deadlines come
 * in accept order: a FIFO and one timer replace a timer per connection.
 */
class ConnectDeadlines {
  #queue: { conn: Connection; at: number }[] = []
  #head = 0
  #timer: NodeJS.Timeout | null = null

  constructor(readonly timeoutMs: number) {}

  add(conn: Connection): void {
    this.#queue.push({ conn, at: Date.now() + this.timeoutMs })
    if (this.#timer === null) this.#arm(this.timeoutMs)
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#fire, Math.max(1, ms))
    // open connections keep the process alive, not their deadlines
    this.#timer.unref()
  }

  #fire = (): void => {
    this.#timer = null
    const now = Date.now()
    const q = this.#queue
    while (this.#head < q.length && q[this.#head]!.at <= now) q[this.#head++]!.conn.connectDeadline()
    if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head)
      this.#head = 0
    }
    if (this.#head < this.#queue.length) this.#arm(this.#queue[this.#head]!.at - now)
    else {
      this.#queue = []
      this.#head = 0
    }
  }
}

/** The broker-wide timers connections share, made with the broker's first connection. */
interface BrokerTimers {
  deadlines: ConnectDeadlines
  keepalive: KeepaliveSweep
}
const timers = new WeakMap<Broker, BrokerTimers>()
function timersOf(broker: Broker): BrokerTimers {
  let t = timers.get(broker)
  if (t === undefined) {
    t = { deadlines: new ConnectDeadlines(broker.limits.connectTimeoutMs), keepalive: new KeepaliveSweep() }
    timers.set(broker, t)
  }
  return t
}

export class Connection implements FrameSink {
  state: ConnState = ConnState.New
  version: 3 | 4 | 5 = 4
  clientId = ''
  session: Session | null = null
  will: PendingWill | null = null
  /** the client's Receive Maximum (5.0) or the v4 window: outgoing QoS 1/2 inflight limit */
  sendQuota = 65535
  /** the client's Maximum Packet Size; larger packets are never sent to it [MQTT-3.1.2-24] */
  maxOutPacket = Infinity
  /** incoming QoS 1/2 PUBLISHes not yet acknowledged (for the broker's Receive Maximum) */
  unacked = 0
  /** outgoing topic aliases (5.0), created while the client's Topic Alias Maximum allows */
  aliasesOut: Map<string, number> | null = null
  aliasOutMax = 0
  keepaliveMs = 0
  /** when the connection was last heard from, as of the keepalive sweep after it */
  lastActivity = Date.now()
  /** bytes arrived since the last keepalive sweep */
  heard = true
  /** packets received while CONNECT is being processed (cluster claim in flight) */
  pending: Packet[] | null = null
  /** the last PUBLISH topic name found valid (a client usually repeats its topic) */
  validTopic: string | null = null

  #aliasesIn: Map<number, string> | null = null
  #remote: string | undefined
  #log: Logger | null = null
  #reader: FrameReader
  /** output of this read or turn: the first buffer alone (the common case), all of them once there are more */
  #out1: Buffer | null = null
  #out: Buffer[] | null = null
  #outBytes = 0
  #scheduled = false
  #swept = false
  #drainListener = false
  #closeReason = ''

  constructor(readonly broker: Broker, readonly socket: Socket, remote?: string) {
    this.#remote = remote
    this.#reader = new FrameReader(broker.limits.maxPacketSize)
    // the server socket was created with noDelay; listeners are shared functions, not closures;
    // 'drain' is listened to from the first time the client's buffer is over its limit
    ;(socket as ConnSocket)[CONN] = this
    socket.on('data', onSocketData)
    socket.on('error', onSocketError)
    socket.on('close', onSocketClose)
    timersOf(broker).deadlines.add(this)
  }

  /** incoming topic aliases (5.0), made when a client first uses one */
  get aliasesIn(): Map<number, string> {
    return (this.#aliasesIn ??= new Map())
  }

  /** Peer address; looked up on first use (getpeername is a system call most connections never need). */
  get remote(): string {
    return (this.#remote ??= `${this.socket.remoteAddress}:${this.socket.remotePort}`)
  }

  /** The broker's logger, or once connected a child naming the client, made on first use. */
  get log(): Logger {
    if (this.#log !== null) return this.#log
    if (this.state !== ConnState.Connected) return this.broker.log
    return (this.#log = this.broker.log.child({ clientId: this.clientId }))
  }

  /** The CONNECT deadline passed (called by the broker-wide deadline queue). */
  connectDeadline(): void {
    if (this.state === ConnState.New) this.protocolError('connect_timeout', null)
  }

  /** socket 'close' */
  socketClosed(): void {
    this.close(this.#closeReason || 'client_closed')
  }

  /** Feeds bytes that arrived before this connection existed (after a PROXY header). */
  feed(chunk: Buffer): void {
    this.onData(chunk)
  }

  onData(chunk: Buffer): void {
    if (this.state === ConnState.Closed) return
    const b = this.broker
    b.stats.bytesIn += chunk.length
    this.heard = true
    // what handling this chunk writes goes out when it is done (Broker.endRead), not a turn later
    b.beginRead()
    try {
      this.#reader.push(chunk, this)
    } finally {
      b.endRead()
    }
  }

  // ── FrameSink ────────────────────────────────────────────────────────────────────────────

  get open(): boolean {
    return this.state !== ConnState.Closed
  }

  packet(p: Packet): void {
    this.#onPacket(p)
  }

  fallback(frame: Buffer): void {
    // One mqtt-packet parser serves every connection: it is only ever given one whole packet,
    // so it holds no state between calls, and building one per connection (a stream and a
    // buffer list) cost more than the rest of a connect. A re-entrant call gets its own.
    let parser = Connection.#parser
    if (Connection.#target !== null) parser = Connection.#makeParser()
    const prev = Connection.#target
    Connection.#target = this
    // the version decides how 5.0 packets (properties) are read
    parser.settings = { protocolVersion: this.version }
    try {
      parser.parse(frame)
    } finally {
      Connection.#target = prev
    }
  }

  static #target: Connection | null = null
  static #parser = Connection.#makeParser()

  static #makeParser(): SettingsParser {
    const parser = mqtt.parser({})
    parser.on('packet', (p: Packet) => Connection.#target!.#onPacket(p))
    parser.on('error', (err: Error) => {
      // after an error mqtt-packet keeps parts of its state (read position): never reuse it
      if (Connection.#parser === parser) Connection.#parser = Connection.#makeParser()
      Connection.#target!.#onParseError(err)
    })
    return parser as SettingsParser
  }

  error(reason: 'packet_too_large' | 'malformed_length'): void {
    // a packet larger than our Maximum Packet Size is refused before it is buffered [MQTT-3.2.2-15]
    if (reason === 'packet_too_large') this.protocolError(reason, RC.PacketTooLarge)
    else this.protocolError(reason, RC.MalformedPacket)
  }

  /** Protocol level from CONNECT; 5.0 changes how PUBLISH is framed. */
  setVersion(v: 3 | 4 | 5): void {
    this.version = v
    this.#reader.v5 = v === 5
  }

  #onPacket(packet: Packet): void {
    if (this.state === ConnState.Closed) return
    const stats = this.broker.stats
    // PUBLISH has its own field: a dictionary key per message costs a megamorphic lookup
    if (packet.cmd === 'publish') stats.publishPacketsIn++
    else stats.packetsIn[packet.cmd] = (stats.packetsIn[packet.cmd] ?? 0) + 1
    if (this.state === ConnState.Connecting) {
      ;(this.pending ??= []).push(packet)
      return
    }
    try {
      this.dispatch(packet)
    } catch (err) {
      // a bug must cost one connection, never the process
      this.log.error('packet handling failed', { clientId: this.clientId, cmd: packet.cmd, err, stack: (err as Error).stack })
      this.protocolError('internal_error', RC.ImplementationSpecificError)
    }
  }

  dispatch(packet: Packet): void {
    if (this.state === ConnState.New) {
      if (packet.cmd !== 'connect') {
        // the first packet must be CONNECT [MQTT-3.1.0-1]
        this.protocolError('first_packet_not_connect', null)
        return
      }
      handleConnect(this, packet)
      return
    }
    switch (packet.cmd) {
      case 'publish':
        handlePublish(this, packet)
        break
      case 'puback':
        handlePuback(this, packet)
        break
      case 'pubrec':
        handlePubrec(this, packet)
        break
      case 'pubrel':
        handlePubrel(this, packet)
        break
      case 'pubcomp':
        handlePubcomp(this, packet)
        break
      case 'subscribe':
        handleSubscribe(this, packet)
        break
      case 'unsubscribe':
        handleUnsubscribe(this, packet)
        break
      case 'pingreq':
        this.write(PINGRESP)
        this.countOut('pingresp')
        break
      case 'disconnect':
        handleDisconnect(this, packet)
        break
      case 'connect':
        // a second CONNECT is a protocol violation [MQTT-3.1.0-2]
        this.protocolError('second_connect', RC.ProtocolError)
        break
      default:
        // AUTH (no enhanced auth offered) and server-to-client packets from a client
        this.protocolError(`unexpected_${packet.cmd}`, RC.ProtocolError)
    }
  }

  #onParseError(err: Error): void {
    if (this.state === ConnState.Closed) return
    if (this.state === ConnState.New && err.message === 'Invalid protocol version') {
      // unsupported protocol level: CONNACK 0x01 (3.1.1 form, understood by every version) [MQTT-3.1.2-2]
      this.broker.stats.protocolError('unsupported_protocol_version')
      this.log.info('refused connection', { remote: this.remote, reason: 'unsupported_protocol_version' })
      this.write(Buffer.from([0x20, 0x02, 0x00, 0x01]))
      this.end('unsupported_protocol_version')
      return
    }
    this.protocolError('malformed_packet', RC.MalformedPacket, err.message)
  }

  /** Counts and logs a protocol violation, sends DISCONNECT with `reasonCode` to 5.0 clients, closes. */
  protocolError(reason: string, reasonCode: number | null, detail?: string): void {
    if (this.state === ConnState.Closed) return
    this.broker.stats.protocolError(reason)
    this.log.info('protocol error', { remote: this.remote, clientId: this.clientId || undefined, reason, detail })
    if (reasonCode !== null && this.version === 5 && this.state === ConnState.Connected) this.sendDisconnect(reasonCode)
    this.end(reason)
  }

  /** Flushes pending output and closes the socket. */
  end(reason: string): void {
    if (this.state === ConnState.Closed) return
    this.#closeReason = reason
    this.flush()
    this.socket.end()
    // do not wait for a slow or absent peer to finish the TCP close
    this.socket.destroySoon?.()
    this.close(reason)
  }

  /** Session-level teardown; runs once whatever closed the connection. */
  close(reason: string, err?: Error): void {
    if (this.state === ConnState.Closed) return
    const wasConnected = this.state === ConnState.Connected
    this.state = ConnState.Closed
    ;(this.socket as ConnSocket)[CONN] = undefined
    if (this.#swept) timersOf(this.broker).keepalive.delete(this)
    this.#swept = false
    this.broker.stats.close(reason)
    if (err) this.log.debug('socket error', { remote: this.remote, err })
    if (!this.socket.destroyed) {
      this.flush()
      this.socket.destroySoon()
    }
    this.broker.connectionClosed(this, wasConnected)
  }

  // ── keepalive ────────────────────────────────────────────────────────────────────────────

  /** Starts the keepalive check: close after 1.5 x the keepalive without a packet [MQTT-3.1.2-22]. */
  startKeepalive(seconds: number): void {
    this.keepaliveMs = seconds * 1000
    if (seconds === 0 || this.#swept || this.state === ConnState.Closed) return
    this.#swept = true
    timersOf(this.broker).keepalive.add(this)
  }

  /** No packet for 1.5 x the keepalive (called by the broker-wide sweep). */
  keepaliveExpired(): void {
    this.broker.stats.protocolError('keepalive_timeout')
    this.log.info('keepalive timeout', { clientId: this.clientId, remote: this.remote })
    if (this.version === 5) this.sendDisconnect(RC.KeepAliveTimeout)
    this.end('keepalive_timeout')
  }

  // ── output ───────────────────────────────────────────────────────────────────────────────

  /** Socket buffer over the per-client limit: QoS 0 is dropped, QoS 1/2 waits in the queue. */
  get congested(): boolean {
    if (this.socket.writableLength + this.#outBytes <= this.broker.limits.maxWriteBuffer) return false
    if (!this.#drainListener) {
      // from now on a drained socket lets the session send what waited (session.drain)
      this.#drainListener = true
      this.socket.on('drain', onSocketDrain)
    }
    return true
  }

  write(buf: Buffer): void {
    if (this.state === ConnState.Closed) return
    if (this.#out1 === null) this.#out1 = buf
    else if (this.#out === null) this.#out = [this.#out1, buf]
    else this.#out.push(buf)
    this.#outBytes += buf.length
    if (!this.#scheduled) {
      this.#scheduled = true
      this.broker.scheduleFlush(this)
    }
  }

  /** Writes the batch collected (during one read, or one event-loop turn) as one socket write. */
  flush(): void {
    this.#scheduled = false
    const first = this.#out1
    if (first === null) return
    const out = this.#out
    const bytes = this.#outBytes
    this.#out1 = null
    this.#out = null
    this.#outBytes = 0
    this.broker.stats.bytesOut += bytes
    const socket = this.socket
    if (socket.destroyed) return
    if (out === null) socket.write(first)
    else if (bytes <= 65536) socket.write(Buffer.concat(out, bytes))
    else {
      socket.cork()
      for (const b of out) socket.write(b)
      socket.uncork()
    }
  }

  countOut(type: string): void {
    const o = this.broker.stats.packetsOut
    o[type] = (o[type] ?? 0) + 1
  }

  send(packet: Packet): void {
    const buf = mqtt.generate(packet, { protocolVersion: this.version })
    if (buf.length > this.maxOutPacket) {
      this.broker.stats.drop('too_large_for_client')
      return
    }
    this.write(buf)
    this.countOut(packet.cmd)
  }

  sendDisconnect(reasonCode: number): void {
    if (this.version !== 5) return
    this.send({ cmd: 'disconnect', reasonCode })
  }

  sendPubrel(packetId: number): void {
    this.write(ackFrame(0x62, packetId))
    this.countOut('pubrel')
  }

  /** PUBACK/PUBREC/PUBCOMP; the 4-byte form when the reason is success [MQTT-3.4.2.1]. */
  sendAck(type: 0x40 | 0x50 | 0x70, packetId: number, reasonCode = 0): void {
    if (reasonCode === 0 || this.version !== 5) this.write(ackFrame(type, packetId))
    else this.write(Buffer.from([type, 0x03, packetId >> 8, packetId & 0xff, reasonCode]))
    this.countOut(type === 0x40 ? 'puback' : type === 0x50 ? 'pubrec' : 'pubcomp')
  }

  /**
   * Writes a PUBLISH for `msg`. Returns false when the packet exceeds the client's Maximum
   * Packet Size and was discarded [MQTT-3.1.2-25]. QoS 0 over the buffer limit is dropped.
   */
  sendPublish(msg: BrokerMessage, qos: QoS, retain: boolean, subIds: number[] | undefined, packetId: number, dup: boolean, enc: EncodeCache | null): boolean {
    if (qos === 0 && this.congested) {
      this.broker.stats.drop('slow_subscriber')
      return true
    }
    const v5 = this.version === 5
    let buf: Buffer
    if (v5 && (subIds !== undefined || this.aliasOutMax > 0)) {
      buf = this.#encodeV5(msg, qos, retain, subIds, packetId)
      if (dup) buf[0] = buf[0]! | 0x08
    } else {
      const base = enc !== null ? enc.get(msg, qos, retain, v5) : this.#encodePlain(msg, qos, retain, v5)
      buf = qos === 0 ? base : withPacketId(base, packetId, dup)
    }
    return this.#writePublish(buf)
  }

  /** Writes an encoded PUBLISH unless it exceeds the client's Maximum Packet Size [MQTT-3.1.2-25]. */
  #writePublish(buf: Buffer): boolean {
    if (buf.length > this.maxOutPacket) {
      this.broker.stats.drop('too_large_for_client')
      return false
    }
    this.write(buf)
    // also the PUBLISH count of ringmq_packets_sent_total (metrics.ts)
    this.broker.stats.publishesDelivered++
    return true
  }

  /**
   * Writes a plain QoS 0 PUBLISH frame as it is, as sendPublish does with a primed frame.
   * Returns false, having written nothing, when this client needs it encoded otherwise (the
   * other protocol family, or 5.0 outgoing topic aliases).
   */
  sendFrame(frame: Buffer, v5: boolean): boolean {
    if ((this.version === 5) !== v5 || (v5 && this.aliasOutMax > 0)) return false
    if (this.congested) this.broker.stats.drop('slow_subscriber')
    else this.#writePublish(frame)
    return true
  }

  #encodePlain(msg: BrokerMessage, qos: QoS, retain: boolean, v5: boolean): Buffer {
    const props = v5 ? v5Properties(msg, undefined) : null
    return props === null ? encodePlainPublish(msg.topic, msg.payload, qos, retain, v5, 0) : encodeV5Publish(msg.topic, msg.payload, qos, retain, 0, props)
  }

  /** Per-subscriber 5.0 encoding: subscription identifiers and outgoing topic aliases. */
  #encodeV5(msg: BrokerMessage, qos: QoS, retain: boolean, subIds: number[] | undefined, packetId: number): Buffer {
    const props = v5Properties(msg, subIds) ?? {}
    let topic = msg.topic
    if (this.aliasOutMax > 0) {
      this.aliasesOut ??= new Map()
      const alias = this.aliasesOut.get(topic)
      if (alias !== undefined) {
        props.topicAlias = alias
        topic = ''
      } else if (this.aliasesOut.size < this.aliasOutMax) {
        const next = this.aliasesOut.size + 1
        props.topicAlias = next
        const buf = encodeV5Publish(topic, msg.payload, qos, retain, packetId, props)
        // only an alias the client has actually received may be used later
        if (buf.length <= this.maxOutPacket) this.aliasesOut.set(topic, next)
        return buf
      }
    }
    return encodeV5Publish(topic, msg.payload, qos, retain, packetId, props)
  }
}

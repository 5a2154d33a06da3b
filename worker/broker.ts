// The worker's broker: accepts MQTT connections, owns sessions, the subscription trie,
// retained messages and the route set it announces to the cluster through the Fabric seam.
//
// Durable order for a QoS 1/2 PUBLISH that touches persistent state (docs/worker.md):
//   store writes issued (queue / inflight / retained / incoming QoS 2 ID) and live fan-out
//   -> commit of those writes -> PUBACK / PUBREC to the publisher.
// A clean-session-only QoS 1 message needs no write and is acknowledged in the same turn.

import net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import type { HostPort } from '../src/config/flags.js'
import { createLogger, type Logger } from '../src/log.js'
import { validateLimits, type BrokerLimits } from '../src/mqtt/limits.js'
import type { BrokerMessage } from '../src/mqtt/message.js'
import { parseShared } from '../src/mqtt/topic.js'
import { plainFrameIsV5 } from '../src/mqtt/plain-frame.js'
import { Trie } from '../src/mqtt/trie.js'
import { inheritNoDelay } from '../src/net/no-delay.js'
import type { Store, StoredWill } from '../src/store/store.js'
import { Connection, ConnState } from './connection.js'
import { Commit, countFailures, type Settle } from './commit.js'
import { EncodeCache } from './encode.js'
import { InflightWriter } from './inflight-writer.js'
import { standaloneFabric, type BrokerSurface, type Fabric, type GroupKey, type RetainedStamp, type RouteChange } from './fabric.js'
import { deliverLocal, fanout } from './fanout.js'
import { registerWorkerMetrics, Stats } from './metrics.js'
import { refuseWithConnack } from './refuse.js'
import { RetainedSet, type RetainedRecord } from './retained.js'
import { NEVER_EXPIRES, Session } from './session.js'
import { SharedGroup, toStored, type Subscription, type TrieEntry } from './subscription.js'
import { RC } from './reason-codes.js'

/** Which client IDs this worker may serve (the ring); absent = standalone, owns every client. */
export interface Ownership {
  owns(clientId: string): boolean
  /** A fresh client ID that this worker owns (server-assigned IDs). */
  assignClientId(): string
}

export interface BrokerOptions {
  id: string
  store: Store
  fabric?: Fabric
  log?: Logger
  limits?: Partial<BrokerLimits>
  /** registry to register the worker metrics on */
  registry?: Registry
  ownership?: Ownership | null
  /** expect a PROXY protocol v2 header before MQTT on every connection */
  proxyProtocol?: boolean
}

/** A will whose delivery may be delayed; `expiryInterval` (seconds) starts when it is published. */
export type PendingWill = StoredWill & { expiryInterval?: number }

const TICK_MS = 1000
/** a forwarded message for no shared group (the common case): no Set per message */
const NO_GROUPS: ReadonlySet<GroupKey> = new Set()
/** connections over --max-connections that may wait for their CONNECT to get a refusing CONNACK */
const MAX_REFUSING = 64

export class Broker implements BrokerSurface {
  readonly workerId: string
  readonly store: Store
  readonly log: Logger
  readonly limits: Readonly<BrokerLimits>
  readonly stats = new Stats()
  readonly trie = new Trie<TrieEntry>()
  readonly retained: RetainedSet
  readonly enc = new EncodeCache()
  readonly inflightWriter: InflightWriter
  readonly sessions = new Map<string, Session>()
  readonly connections = new Set<Connection>()
  /**
   * The cluster seam. Replaceable after construction because the gRPC fabric needs this
   * broker (as BrokerSurface) to be built: create the broker, then the fabric, then assign;
   * the fabric learns routes that existed before from `routeSnapshot()`.
   */
  fabric: Fabric
  /** Replaced when a new ring epoch is adopted (`ringOwnership(spec, id)`). */
  ownership: Ownership | null

  #groups = new Map<GroupKey, SharedGroup>()
  #routes = new Map<string, { route: RouteChange; count: number }>()
  #groupTurns = new Map<GroupKey, number>()
  /** offline persistent sessions with a finite expiry, and sessions with a delayed will */
  #offline = new Set<Session>()
  #wills = new Set<Session>()
  /** failed forwards of QoS 1/2 messages nobody waits for (wills) */
  readonly forwardFailures: Settle = countFailures(() => this.stats.drop('forward_failed'))
  #flushList: Connection[] = []
  #flushScheduled = false
  /** connections inside their read handler (nested: a PROXY header's rest is fed from outside) */
  #reading = 0
  #server: net.Server | null = null
  #ticker: NodeJS.Timeout | null = null
  #ticks = 0
  #proxyProtocol: boolean
  #closing = false
  #refusing = 0

  constructor(opts: BrokerOptions) {
    this.workerId = opts.id
    this.store = opts.store
    this.fabric = opts.fabric ?? standaloneFabric
    this.log = opts.log ?? createLogger({ name: 'worker', id: opts.id })
    this.limits = validateLimits(opts.limits ?? {})
    this.ownership = opts.ownership ?? null
    this.retained = new RetainedSet(opts.store)
    this.inflightWriter = new InflightWriter(opts.store, this.stats)
    this.#proxyProtocol = opts.proxyProtocol ?? false
    if (opts.registry) {
      registerWorkerMetrics(opts.registry, this.stats, {
        connections: () => this.connections.size,
        sessions: () => {
          let online = 0
          for (const s of this.sessions.values()) if (s.conn !== null) online++
          return { online, offline: this.sessions.size - online }
        },
        queued: () => {
          let n = 0
          for (const s of this.sessions.values()) n += s.queueLength
          return n
        },
        inflight: () => {
          let n = 0
          for (const s of this.sessions.values()) n += s.inflight.size
          return n
        },
        retained: () => this.retained.size,
        storeBytes: () => this.store.sizeBytes(),
      })
    }
  }

  // ── startup / shutdown ───────────────────────────────────────────────────────────────────

  /** Restores sessions, subscriptions, queues, inflight and retained messages from the store. */
  load(): void {
    const now = Date.now()
    let restored = 0
    let expired = 0
    for (const rec of this.store.listSessions()) {
      const disconnectedAt = rec.disconnectedAt ?? now
      const ended = rec.expiryInterval === 0 || (rec.expiryInterval !== NEVER_EXPIRES && disconnectedAt + rec.expiryInterval * 1000 <= now)
      if (ended) {
        // a will still pending when the session ended is published now [MQTT-3.1.2-8]
        const will = rec.will as PendingWill | null
        if (will && (rec.disconnectedAt === null || rec.willAt !== null)) this.publishWillNow(rec.clientId, will)
        void this.store.deleteSession(rec.clientId)
        expired++
        continue
      }
      const s = new Session(this, rec.clientId)
      s.expiryInterval = rec.expiryInterval
      s.protocolVersion = rec.protocolVersion
      s.stored = true
      s.disconnectedAt = disconnectedAt
      s.will = rec.will
      s.willAt = rec.willAt
      if (rec.disconnectedAt === null && rec.will) {
        // the process died while the client was connected: an ungraceful close [MQTT-3.1.2-8]
        s.willAt = now + Math.min(rec.will.delayInterval, rec.expiryInterval) * 1000
      }
      if (s.will && s.willAt !== null) this.#wills.add(s)
      if (s.expiryInterval !== NEVER_EXPIRES) this.#offline.add(s)
      this.sessions.set(s.clientId, s)
      if (rec.disconnectedAt === null) void this.store.putSession({ ...rec, disconnectedAt, willAt: s.willAt })
      restored++
    }
    for (const sub of this.store.listSubscriptions()) {
      const s = this.sessions.get(sub.clientId)
      if (!s) {
        void this.store.deleteSubscription(sub.clientId, sub.filter)
        continue
      }
      const shared = parseShared(sub.filter)
      if (shared !== null && 'error' in shared) continue
      this.addSubscription(s, {
        kind: 'sub', session: s, full: sub.filter, filter: shared ? shared.filter : sub.filter, group: shared ? shared.group : null,
        qos: sub.qos, noLocal: sub.noLocal, retainAsPublished: sub.retainAsPublished, retainHandling: sub.retainHandling,
        subscriptionId: sub.subscriptionId,
      }, false)
    }
    for (const s of this.sessions.values()) {
      for (const q of this.store.peekQueue(s.clientId, this.limits.maxQueue)) s.restoreQueued(q)
      for (const f of this.store.listInflight(s.clientId)) {
        if (f.qos === 0) continue
        s.restoreInflight(f.packetId, { msg: f.message, qos: f.qos, retain: f.retain, subIds: f.subscriptionIds, state: f.state })
      }
    }
    this.retained.load(now)
    this.log.info('state restored', { sessions: restored, expiredSessions: expired, subscriptions: this.trie.size, retained: this.retained.size })
    this.#ticker = setInterval(() => this.#tick(), TICK_MS)
    this.#ticker.unref()
  }

  async listen(at: HostPort): Promise<HostPort> {
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket))
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      // a deep accept queue: a router restart or a network blip reconnects thousands of clients at once
      server.listen({ port: at.port, host: at.host, backlog: 4096 }, () => resolve())
    })
    inheritNoDelay(server)
    const addr = server.address() as AddressInfo
    return { host: addr.address, port: addr.port }
  }

  /** Takes a freshly accepted socket. */
  accept(socket: net.Socket): void {
    this.stats.accepted++
    if (this.#closing) {
      socket.destroy()
      return
    }
    if (this.connections.size >= this.limits.maxConnections) {
      this.log.warn('connection refused', { reason: 'max_connections', remote: `${socket.remoteAddress}:${socket.remotePort}` })
      // counted once: 'max_connections_connack' when answered with CONNACK 0x97 / 0x03,
      // 'max_connections' when closed without (at accept, or no CONNECT in time)
      const refused = (answered: boolean): void => {
        const reason = answered ? 'max_connections_connack' : 'max_connections'
        this.stats.refused[reason] = (this.stats.refused[reason] ?? 0) + 1
      }
      // a bounded number of sockets may wait for their CONNECT; not behind the PROXY
      // protocol, where a header would come first
      if (this.#proxyProtocol || this.#refusing >= MAX_REFUSING) {
        refused(false)
        socket.destroy()
        return
      }
      this.#refusing++
      refuseWithConnack(socket, this.limits.connectTimeoutMs, (answered) => {
        this.#refusing--
        refused(answered)
      })
      return
    }
    if (this.#proxyProtocol) {
      void this.#acceptProxied(socket)
      return
    }
    this.connections.add(new Connection(this, socket))
  }

  async #acceptProxied(socket: net.Socket): Promise<void> {
    const { readProxyHeader } = await import('./proxy.js')
    const res = await readProxyHeader(socket, this.limits.connectTimeoutMs)
    if (res === null) {
      this.stats.protocolError('bad_proxy_header')
      socket.destroy()
      return
    }
    const conn = new Connection(this, socket, res.remote)
    this.connections.add(conn)
    if (res.rest.length > 0) conn.feed(res.rest)
    socket.resume()
  }

  /** Stops accepting, disconnects every client (5.0: 0x8B), waits for the store to commit. */
  async close(): Promise<void> {
    this.#closing = true
    if (this.#ticker) clearInterval(this.#ticker)
    const server = this.#server
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve()
    for (const c of [...this.connections]) {
      if (c.state === ConnState.Connected) c.sendDisconnect(0x8b)
      c.end('server_shutdown')
    }
    this.#flushAll()
    await closed
    this.inflightWriter.drainNow()
    await this.store.flushed()
  }

  // ── output batching ──────────────────────────────────────────────────────────────────────

  // Output is written once per read: what handling one chunk from a client produced (the
  // fan-out of every PUBLISH in it, acknowledgements) goes out as one write per receiving
  // client when the chunk is done. At a low rate that is straight away, in the same callback;
  // at a high rate a chunk carries many packets, so writes still carry many. Writes made
  // outside a read (store commits, timers, the cluster fabric) are batched per event-loop turn.

  /** A connection starts handling a chunk it read. */
  beginRead(): void {
    this.#reading++
  }

  /** ... and is done with it: flush what it wrote. */
  endRead(): void {
    if (--this.#reading !== 0) return
    if (this.#flushList.length > 0) this.#flushNow()
    this.fabric.readDone()
  }

  /** Queues `conn` for one flush at the end of the current read, or else of this event-loop turn. */
  scheduleFlush(conn: Connection): void {
    this.#flushList.push(conn)
    if (this.#reading === 0 && !this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(this.#flushAll)
    }
  }

  #flushAll = (): void => {
    this.#flushScheduled = false
    this.#flushNow()
  }

  #flushNow(): void {
    const list = this.#flushList
    this.#flushList = []
    for (let i = 0; i < list.length; i++) list[i]!.flush()
  }

  // ── publishing ───────────────────────────────────────────────────────────────────────────

  /**
   * A message from a local client (or a will): retained update, then fan-out. The store writes
   * and forwards a QoS 1/2 acknowledgement must wait for go to `commit` (null for QoS 0).
   */
  publish(msg: BrokerMessage, commit: Commit | null): void {
    this.stats.publishesReceived++
    if (msg.retain) {
      // an empty retained payload clears the topic and is not stored [MQTT-3.3.1-6, MQTT-3.3.1-7]
      const stored = msg.payload.length === 0 ? null : msg
      const stamp = this.fabric.retainedChanged(msg.topic, stored)
      const p = this.retained.set(msg.topic, stored, stamp)
      if (commit !== null) commit.add(p)
    }
    fanout(this, msg, commit)
  }

  nextGroupTurn(key: GroupKey): number {
    const n = this.#groupTurns.get(key) ?? 0
    this.#groupTurns.set(key, n + 1)
    return n
  }

  // ── subscriptions and routes ─────────────────────────────────────────────────────────────

  addSubscription(session: Session, sub: Subscription, persist: boolean): Promise<void> | undefined {
    session.subs.set(sub.full, sub)
    if (sub.group === null) this.trie.add(sub.filter, sub)
    else {
      const key = `${sub.group}/${sub.filter}`
      let g = this.#groups.get(key)
      if (!g) {
        g = new SharedGroup(key, sub.group, sub.filter)
        this.#groups.set(key, g)
        this.trie.add(sub.filter, g)
      }
      g.members.push(sub)
    }
    const r = this.#routes.get(sub.full)
    if (r) {
      // peers weigh shared groups by member count: tell them at once, not at a reconcile
      r.count++
      this.fabric.routeAdded({ ...r.route, count: r.count })
    } else {
      const route: RouteChange = { filter: sub.filter, group: sub.group }
      this.#routes.set(sub.full, { route, count: 1 })
      this.fabric.routeAdded({ ...route, count: 1 })
    }
    return persist && session.persistent ? this.store.putSubscription(toStored(sub)) : undefined
  }

  removeSubscription(session: Session, sub: Subscription, persist: boolean): void {
    session.subs.delete(sub.full)
    if (sub.group === null) this.trie.remove(sub.filter, sub)
    else {
      const key = `${sub.group}/${sub.filter}`
      const g = this.#groups.get(key)
      if (g) {
        const i = g.members.indexOf(sub)
        if (i >= 0) g.members.splice(i, 1)
        if (g.members.length === 0) {
          this.#groups.delete(key)
          this.trie.remove(sub.filter, g)
        }
      }
    }
    const r = this.#routes.get(sub.full)
    if (r && --r.count === 0) {
      this.#routes.delete(sub.full)
      this.fabric.routeRemoved(r.route)
    } else if (r) this.fabric.routeAdded({ ...r.route, count: r.count })
    if (persist && session.stored) void this.store.deleteSubscription(session.clientId, sub.full)
  }

  // ── session lifecycle ────────────────────────────────────────────────────────────────────

  /** Ends a session for good: subscriptions and routes removed, stored state deleted. */
  destroySession(session: Session): void {
    for (const sub of [...session.subs.values()]) this.removeSubscription(session, sub, false)
    session.clearQueue()
    session.dropInflight()
    this.#offline.delete(session)
    this.#wills.delete(session)
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId)
    if (session.stored) {
      session.stored = false
      void this.store.deleteSession(session.clientId)
    }
  }

  /** A session got a connection back: no expiry, no delayed will while it is online. */
  sessionOnline(session: Session): void {
    this.#offline.delete(session)
    this.#wills.delete(session)
    session.will = null
    session.willAt = null
    session.disconnectedAt = null
  }

  /** Called once by every Connection when it closes. */
  connectionClosed(conn: Connection, wasConnected: boolean): void {
    this.connections.delete(conn)
    const session = conn.session
    if (!wasConnected || session === null) return
    conn.session = null
    if (session.conn === conn) session.conn = null
    const will = conn.will
    conn.will = null
    const now = Date.now()
    if (session.expiryInterval === 0) {
      this.destroySession(session)
      if (will) this.publishWillNow(session.clientId, will)
      return
    }
    session.disconnectedAt = now
    if (will) {
      // published after the delay, or when the session ends if that is sooner [MQTT-3.1.3-9]
      const delay = Math.min(will.delayInterval, session.expiryInterval)
      if (delay === 0) this.publishWillNow(session.clientId, will)
      else {
        session.will = will
        session.willAt = now + delay * 1000
        this.#wills.add(session)
      }
    }
    if (session.expiryInterval !== NEVER_EXPIRES) this.#offline.add(session)
    this.persistSession(session)
  }

  persistSession(session: Session): Promise<void> {
    session.stored = true
    return this.store.putSession({
      v: 1, clientId: session.clientId, protocolVersion: session.protocolVersion, expiryInterval: session.expiryInterval,
      disconnectedAt: session.disconnectedAt, will: session.will, willAt: session.willAt,
    })
  }

  /** Publishes a will as if its client had sent it. */
  publishWillNow(clientId: string, will: PendingWill, commit: Commit | null = null): void {
    const m = will.message
    const msg: BrokerMessage = { ...m, origin: this.workerId, publisherId: clientId }
    if (will.expiryInterval !== undefined) msg.expiresAt = Date.now() + will.expiryInterval * 1000
    this.log.debug('will published', { clientId, topic: msg.topic })
    this.publish(msg, msg.qos > 0 ? commit : null)
  }

  #tick(): void {
    const now = Date.now()
    for (const s of this.#wills) {
      if (s.willAt !== null && s.willAt <= now && s.will) {
        const will = s.will as PendingWill
        s.will = null
        s.willAt = null
        this.#wills.delete(s)
        this.publishWillNow(s.clientId, will)
        if (this.sessions.get(s.clientId) === s) this.persistSession(s)
      }
    }
    for (const s of this.#offline) {
      if (s.conn !== null || s.disconnectedAt === null) continue
      if (s.disconnectedAt + s.expiryInterval * 1000 <= now) {
        if (s.will) {
          const will = s.will as PendingWill
          s.will = null
          this.publishWillNow(s.clientId, will)
        }
        this.log.debug('session expired', { clientId: s.clientId })
        this.stats.drop('session_expired', s.queueLength)
        this.destroySession(s)
      }
    }
    if (++this.#ticks % 60 === 0) this.retained.sweep(now)
  }

  // ── BrokerSurface: what the fabric calls ─────────────────────────────────────────────────

  deliverForwarded(msg: BrokerMessage, groups: GroupKey[], normal: boolean, done: Settle | null, frame: Buffer | null): void {
    // the sender's plain QoS 0 frame goes to QoS 0 subscribers as it came, as a local publisher's does
    if (frame !== null) this.enc.prime(msg, frame, plainFrameIsV5(frame, msg.payload.length))
    this.enc.reset(msg)
    const matches = this.trie.match(msg.topic)
    const groupSet = groups.length === 0 ? NO_GROUPS : new Set(groups)
    if (done === null) {
      // QoS 0: delivered within this call and never acknowledged
      deliverLocal(this, msg, matches, normal, groupSet, null, this.enc)
      return
    }
    const commit = new Commit()
    deliverLocal(this, msg, matches, normal, groupSet, commit, this.enc)
    // settles within this call when everything was delivered or queued in memory
    commit.seal(done)
  }

  deliverFrame(topic: string, publisherId: string, frame: Buffer, v5: boolean, normal: boolean): boolean {
    const matches = this.trie.match(topic)
    // deliverLocal's cases without a message: nobody here, or one plain subscription
    if (matches.length === 0) return true
    if (matches.length !== 1) return false
    const sub = matches[0]!
    if (sub.kind !== 'sub') return false
    if (!normal) return true
    // no-local: never back to the publishing client [MQTT-3.8.3-3]
    if (sub.noLocal && sub.session.clientId === publisherId) return true
    if (sub.subscriptionId !== undefined) return false
    const conn = sub.session.conn
    if (conn === null) {
      this.stats.drop('offline_qos0')
      return true
    }
    return conn.sendFrame(frame, v5)
  }

  applyRetained(topic: string, msg: BrokerMessage | null, stamp?: RetainedStamp): void {
    void this.retained.set(topic, msg, stamp)
  }

  listRetained(): Iterable<RetainedRecord> {
    return this.retained.records()
  }

  /**
   * Take-over from another worker. The session's state does not move with the client (no
   * session replication yet), so for this worker the session ends here, whatever its expiry:
   * its will is published now, through the normal fan-out so it crosses workers. That is the
   * live connection's will, or the pending delayed will of an offline session, since a will
   * goes out when its delay elapses or when the session ends, whichever is first
   * [MQTT-3.1.3-9, MQTT-3.1.4-3]. The will is published before this resolves, so before the
   * new worker answers CONNACK.
   */
  async endSession(clientId: string, reasonCode: number): Promise<void> {
    const s = this.sessions.get(clientId)
    if (!s) return
    const conn = s.conn
    let will: PendingWill | null = s.will as PendingWill | null
    if (conn) {
      will = conn.will
      conn.will = null
      conn.session = null
      s.conn = null
      conn.sendDisconnect(reasonCode || RC.SessionTakenOver)
      conn.end('session_taken_over')
    }
    s.will = null
    this.destroySession(s)
    const commit = new Commit()
    if (will) this.publishWillNow(clientId, will, commit)
    await commit.sealed()
    await this.store.flushed()
  }

  routeSnapshot(): Array<RouteChange & { count: number }> {
    return [...this.#routes.values()].map((r) => ({ ...r.route, count: r.count }))
  }
}

/** Creates a broker over `store` and restores its state. Call `listen()` to accept clients. */
export function createBroker(opts: BrokerOptions): Broker {
  const b = new Broker(opts)
  b.load()
  return b
}

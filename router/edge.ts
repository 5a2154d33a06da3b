// The edge: accept a TCP connection, peek its CONNECT, pick the worker, splice.
//
//   accept ─► peek (deadline, size limit) ─► prefs(clientId) ─► connect owner ──► splice
//                 │ garbage / slow / big          │ refused / timeout: mark down,     both ways,
//                 ▼                               │ next live pref                    backpressure
//               close (counted)                   ▼ none left
//                                          CONNACK server unavailable, close
//
// Kept lean because every connection pays for it: one Conn object per connection, and the
// socket event handlers are module-level functions (no closures per connection but the worker
// socket's read callback) that find their Conn through a symbol on the socket. No timer per
// connection: the CONNECT deadline and the worker connect timeout are entries in two shared
// DeadlineQueues. Counters are plain numbers. The splice writes chunks as they come and pauses
// the reading side when the other side's buffer is full (a 'drain' listener is added only then).
// The client socket keeps reading while its worker is being reached (bytes after the CONNECT are
// kept, bounded by the CONNECT size limit), which avoids a pause/resume per connection. The
// worker socket reads through `onread` (no Readable machinery per read), and its options are
// shaped so that net.Socket's constructor stays on one hidden class (worker-socket.ts). Both sockets
// are half-open so that a FIN is answered with close(2) rather than shutdown(2) + close(2).

import { Buffer } from 'node:buffer'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import type { HostPort } from '../src/config/flags.js'
import { connackServerUnavailable, peekConnect } from '../src/mqtt/connect-peek.js'
import { encodeProxyV2 } from '../src/mqtt/proxy-protocol.js'
import { inheritNoDelay } from '../src/net/no-delay.js'
import type { RingWorker } from '../src/ring/spec.js'
import { DeadlineQueue } from './deadlines.js'
import type { Membership } from './membership.js'
import type { CloseReason, RouterCounts, RouterMetrics } from './metrics.js'
import { connectWorker } from './worker-socket.js'

export interface EdgeOptions {
  mqtt: HostPort
  /** send a PROXY protocol v2 header to workers */
  proxyProtocol: boolean
  /** per attempt to open a worker connection */
  connectTimeoutMs: number
  /** the whole CONNECT must arrive within this time of accept */
  connectDeadlineMs: number
  maxConnectBytes: number
  /** client connections at most; more are closed on accept (counted as reason "limit") */
  maxConnections: number
}

const PEEKING = 0
const CONNECTING = 1
const SPLICED = 2
const CLOSED = 3

const kConn = Symbol('ringmq.conn')
type Tagged = net.Socket & { [kConn]?: Conn }

class Conn {
  state = PEEKING
  buf: Buffer | null = null
  worker: net.Socket | null = null
  workerId = ''
  clientId = ''
  protocolVersion: 3 | 4 | 5 = 4
  /** index of the next pref to try */
  attempt = 0
  parsedAt = 0
  /** DeadlineQueue sequence numbers, -1 when none is pending */
  deadline = -1
  connectTimeout = -1
  /** a 'drain' listener was added to both sockets (at the first backpressure) */
  draining = false
  reason: CloseReason | null = null
  constructor(
    readonly edge: Edge,
    readonly client: net.Socket,
  ) {}
}

export class Edge {
  readonly opts: EdgeOptions
  readonly membership: Membership
  readonly metrics: RouterMetrics
  readonly counts: RouterCounts
  /** clients that must have sent their whole CONNECT by then */
  readonly deadlines: DeadlineQueue<Conn>
  /** worker connects in progress */
  readonly connectTimeouts: DeadlineQueue<Tagged>
  #server: net.Server
  #live = new Set<Conn>()
  #closedToWorker = 0
  #closedToClient = 0

  constructor(opts: EdgeOptions, membership: Membership, metrics: RouterMetrics) {
    this.opts = opts
    this.membership = membership
    this.metrics = metrics
    this.counts = metrics.counts
    this.deadlines = new DeadlineQueue(opts.connectDeadlineMs, onDeadline)
    this.connectTimeouts = new DeadlineQueue(opts.connectTimeoutMs, onWorkerTimeout)
    // allowHalfOpen: a client's FIN must not make Node shut down the client's side by itself
    // (onEnd decides, and closes it without a shutdown(2) of its own)
    this.#server = net.createServer({ noDelay: true, allowHalfOpen: true }, onAccept)
    // Node closes connections above the limit itself, before any JS runs for them
    this.#server.maxConnections = opts.maxConnections
    this.#server.on('drop', () => this.counts.closed.limit++)
    ;(this.#server as net.Server & { [kEdge]?: Edge })[kEdge] = this
  }

  async listen(): Promise<HostPort> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen({ port: this.opts.mqtt.port, host: this.opts.mqtt.host, backlog: 4096 }, () => resolve())
    })
    inheritNoDelay(this.#server)
    const a = this.#server.address() as net.AddressInfo
    return { host: a.address, port: a.port }
  }

  get connections(): number {
    return this.#live.size
  }

  bytes(): { toWorker: number; toClient: number } {
    let toWorker = this.#closedToWorker
    let toClient = this.#closedToClient
    for (const c of this.#live) {
      if (c.worker) toWorker += c.worker.bytesWritten
      toClient += c.client.bytesWritten
    }
    return { toWorker, toClient }
  }

  /** Stops accepting and closes every connection (clients reconnect through another router). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.deadlines.stop()
    this.connectTimeouts.stop()
    for (const c of [...this.#live]) {
      c.reason ??= 'shutdown'
      c.worker?.destroy()
      c.client.destroy()
    }
    await closed
  }

  adopt(c: Conn): void {
    this.#live.add(c)
  }

  forget(c: Conn): void {
    if (!this.#live.delete(c)) return
    if (c.worker) this.#closedToWorker += c.worker.bytesWritten
    this.#closedToClient += c.client.bytesWritten
  }
}

const kEdge = Symbol('ringmq.edge')

function onAccept(this: net.Server & { [kEdge]?: Edge }, socket: Tagged): void {
  const edge = this[kEdge]!
  const c = new Conn(edge, socket)
  socket[kConn] = c
  edge.adopt(c)
  edge.counts.accepted++
  socket.on('data', onClientData)
  socket.on('error', onClientError)
  socket.on('close', onClientClose)
  socket.on('end', onEnd)
  c.deadline = edge.deadlines.add(c)
}

function onDeadline(c: Conn): void {
  c.deadline = -1
  if (c.state !== PEEKING) return
  closeClient(c, 'deadline')
}

/**
 * One handler for the client's bytes in every state, so that the listener is never swapped and
 * the socket is not paused on the common path (each pause/resume costs epoll updates).
 */
function onClientData(this: Tagged, chunk: Buffer): void {
  const c = this[kConn]!
  if (c.state === SPLICED) {
    if (!c.worker!.write(chunk)) backpressure(c, this)
    return
  }
  if (c.state === CLOSED) return
  c.buf = c.buf === null ? chunk : Buffer.concat([c.buf, chunk])
  if (c.state === CONNECTING) {
    // bytes after the CONNECT while the worker is being reached: keep them, within bounds
    if (c.buf.length > c.edge.opts.maxConnectBytes) this.pause()
    return
  }
  const r = peekConnect(c.buf, c.edge.opts.maxConnectBytes)
  if (r.kind === 'more') return
  if (r.kind === 'reject') {
    closeClient(c, r.reason)
    return
  }
  c.edge.deadlines.cancel(c.deadline)
  c.deadline = -1
  c.state = CONNECTING
  c.clientId = r.clientId
  c.protocolVersion = r.protocolVersion
  c.parsedAt = performance.now()
  route(c)
}

/** Connects to the next live pref (or any live worker for an empty client ID). */
function route(c: Conn): void {
  const m = c.edge.membership
  let target: RingWorker | undefined
  if (c.clientId === '') {
    target = c.attempt < 3 ? m.anyAlive() : undefined
  } else {
    const prefs = m.placement.prefs(c.clientId)
    while (c.attempt < prefs.length && !m.isAlive(prefs[c.attempt]!.id)) c.attempt++
    target = prefs[c.attempt]
  }
  c.attempt++
  if (!target) {
    c.edge.counts.routeFailures['no-worker']++
    c.state = CLOSED
    c.reason = 'no-worker'
    c.client.write(connackServerUnavailable(c.protocolVersion))
    c.client.destroySoon() // close once written, whether or not the client closes its side
    return
  }
  // read into one shared buffer, copied out and written to the client at once
  const w = connectWorker(m.address(target.id), { buffer: workerReadBuffer, callback: (n: number) => fromWorker(c, n) }) as Tagged
  w[kConn] = c
  c.worker = w
  c.workerId = target.id
  c.connectTimeout = c.edge.connectTimeouts.add(w)
  w.on('connect', onWorkerConnect)
  w.on('error', onWorkerError)
  w.on('close', onWorkerClose)
}

function onWorkerConnect(this: Tagged): void {
  const c = this[kConn]!
  if (c.worker !== this || c.state !== CONNECTING) return
  const edge = c.edge
  edge.connectTimeouts.cancel(c.connectTimeout)
  c.connectTimeout = -1
  edge.metrics.connectLatency.observe((performance.now() - c.parsedAt) / 1000)
  edge.membership.markUp(c.workerId)
  c.state = SPLICED
  const client = c.client
  if (edge.opts.proxyProtocol && client.remoteAddress && client.localAddress) {
    this.write(encodeProxyV2({ address: client.remoteAddress, port: client.remotePort! }, { address: client.localAddress, port: client.localPort! }))
  }
  this.write(c.buf!)
  c.buf = null
  this.on('end', onEnd)
  if (client.isPaused()) client.resume()
}

/** A failed attempt: mark the worker down (see Membership.timedOut for timeouts) and try the next pref. */
function attemptFailed(c: Conn, w: Tagged, why: 'connect-refused' | 'connect-timeout' | 'connect-error', detail: string): void {
  c.edge.counts.routeFailures[why]++
  c.edge.connectTimeouts.cancel(c.connectTimeout)
  c.connectTimeout = -1
  if (why === 'connect-timeout') c.edge.membership.timedOut(c.workerId, c.edge.opts.connectTimeoutMs)
  else c.edge.membership.markDown(c.workerId, detail)
  c.worker = null
  w.destroy()
  if (c.state === CONNECTING) route(c)
}

function onWorkerTimeout(w: Tagged): void {
  const c = w[kConn]!
  c.connectTimeout = -1
  if (c.worker === w && c.state === CONNECTING) attemptFailed(c, w, 'connect-timeout', 'connect timeout')
}

function onWorkerError(this: Tagged, err: NodeJS.ErrnoException): void {
  const c = this[kConn]!
  if (c.worker === this && c.state === CONNECTING) {
    attemptFailed(c, this, err.code === 'ECONNREFUSED' ? 'connect-refused' : 'connect-error', `connect ${err.code ?? err.message}`)
  }
  // after the splice, 'close' (with hadError) follows and closes the client
}

function onWorkerClose(this: Tagged, hadError: boolean): void {
  const c = this[kConn]!
  if (c.worker !== this || c.state !== SPLICED) return
  c.reason ??= 'worker-closed'
  c.state = CLOSED
  // Flush what the worker sent last (e.g. CONNACK 0x9C, DISCONNECT) before closing the client.
  if (hadError) c.client.destroy()
  else c.client.destroySoon()
}

/**
 * Every worker socket reads into this one buffer (`onread`): the callback runs synchronously after
 * each read and copies the bytes out before the next read can reuse it.
 */
const workerReadBuffer = Buffer.allocUnsafe(64 * 1024)

/** Returns true: backpressure pauses the worker socket itself (see backpressure()). */
function fromWorker(c: Conn, n: number): boolean {
  const chunk = Buffer.allocUnsafe(n)
  workerReadBuffer.copy(chunk, 0, 0, n)
  if (!c.client.write(chunk)) backpressure(c, c.worker as Tagged)
  return true
}

/** `from`'s peer has a full buffer: stop reading `from` until the peer drains. */
function backpressure(c: Conn, from: Tagged): void {
  from.pause()
  if (c.draining) return
  c.draining = true
  c.client.on('drain', onDrain)
  c.worker!.on('drain', onDrain)
}

function onDrain(this: Tagged): void {
  const c = this[kConn]!
  const other = this === c.client ? c.worker : c.client
  other?.resume()
}

/**
 * One side sent its FIN (both sockets are half-open, so Node has not reacted yet). It is closed
 * now, once what is queued for it has been written: close(2) sends its FIN after those bytes, which
 * saves the shutdown(2) (and the epoll updates and callbacks around it) that end() would cost.
 * Its 'close' handler then passes the FIN on: the other side is ended and closed after its own
 * pending bytes (destroySoon), so e.g. a worker's last CONNACK or DISCONNECT reaches the client.
 * A client that closes before it is spliced just goes (its worker connect, if any, is dropped).
 */
function onEnd(this: Tagged): void {
  if (this.writableLength === 0) this.destroy()
  else this.destroySoon()
}

function onClientError(this: Tagged): void {
  const c = this[kConn]!
  c.reason ??= 'client-error'
  // 'close' follows
}

function onClientClose(this: Tagged): void {
  const c = this[kConn]!
  c.edge.deadlines.cancel(c.deadline)
  c.deadline = -1
  c.edge.connectTimeouts.cancel(c.connectTimeout)
  c.connectTimeout = -1
  const wasSpliced = c.state === SPLICED
  c.state = CLOSED
  c.buf = null
  const reason = c.reason ?? 'client-closed'
  c.edge.counts.closed[reason]++
  c.edge.forget(c)
  const w = c.worker
  if (w && !w.destroyed) {
    if (wasSpliced) w.destroySoon()
    else w.destroy() // still connecting: nothing of the client's was sent yet
  }
}

function closeClient(c: Conn, reason: CloseReason): void {
  c.reason = reason
  c.state = CLOSED
  c.client.destroy()
}

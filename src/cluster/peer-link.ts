// Peer links: one long-lived bidirectional gRPC stream (Peer.Link) per pair of workers.
//
// Who dials: BOTH sides dial (the higher ID two heartbeats later) a peer from their ring spec whenever they have no link to it,
// and duplicates are removed: when two links to the same peer exist, the one dialed by the
// lower worker ID wins (a tie, i.e. a redial by the same side, goes to the newer link). Both
// ends apply the same rule, so they keep the same stream. Dialing from both sides means a
// node that knows a peer the other does not know yet (a newer ring) still gets a link and
// can spread its epoch over it.
//
//   dialer                       acceptor
//     | ---- Hello{id, epoch} ---> |
//     | <--- Hello{id, epoch} ---- |   link up on both sides (onUp)
//     | <=== heartbeats, routes, batches, acks, retained, claims ===> |
//
// Liveness: every frame counts as a sign of life. A link that has been silent for
// `missedBeats * heartbeatMs` is closed, which marks the peer down (onDown); the dialer loop
// then reconnects with exponential backoff and full jitter (base 100 ms, cap 5 s), so a peer
// is up again as soon as a new link has exchanged Hellos.
//
// gRPC keepalive (client side): a ping every 10 s, 5 s to answer, also without calls. The
// application heartbeats already detect a silent peer within seconds; keepalive is there
// to tear down a half-open TCP connection under the stream so that the channel reconnects
// instead of waiting for the OS (minutes). 10 s stays above the server's 5 s minimum ping
// interval (grpc-server.ts). `waitForReady: false` makes a dial to a dead peer fail at once
// so that our own backoff, not the channel's, paces retries.

import * as grpc from '@grpc/grpc-js'
import { MAX_FRAME_BYTES, PEER_WINDOW_BYTES } from './limits.js'
import type { Logger } from '../log.js'
import type { EncodedPeerMessage } from './peer-codec.js'
import { ringmqGrpc } from './proto.js'
import type { PbHello, PbPeerMessage } from './proto-types.js'

export const CLIENT_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.max_pings_without_data': 0,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 5_000,
  'grpc.max_receive_message_length': MAX_FRAME_BYTES,
  'grpc.max_send_message_length': MAX_FRAME_BYTES,
  // the link is one long-lived stream with its own redial (below): grpc-js's retry layer
  // would only copy every frame into a replay buffer
  'grpc.enable_retries': 0,
  // not served (see grpc-server.ts): no per-message bookkeeping for it
  'grpc.enable_channelz': 0,
  // the receive window of the dialing side (the accepting side's: grpc-server.ts)
  'grpc-node.flow_control_window': PEER_WINDOW_BYTES,
}

const BACKOFF_BASE_MS = 100
const BACKOFF_CAP_MS = 5_000

type Call = grpc.ClientDuplexStream<PbPeerMessage, PbPeerMessage> | grpc.ServerDuplexStream<PbPeerMessage, PbPeerMessage>

/**
 * Hello.protocol: the wire revision this worker speaks. 3: reads PublishBatch.packed
 * (packed-batch.ts) and PublishAck.ok_ranges; 4: packed batches may carry PUBLISH frames.
 */
export const WIRE_PROTOCOL = 4

/** One established stream to a peer. */
export class Link {
  readonly peerId: string
  /** worker ID of the side that dialed this stream */
  readonly dialer: string
  readonly createdAt = Date.now()
  lastSeen = Date.now()
  paused = false
  /** the peer's wire revision (Hello.protocol), known once the link is up */
  protocol = 1
  #call: Call
  #closed = false

  constructor(peerId: string, dialer: string, call: Call) {
    this.peerId = peerId
    this.dialer = dialer
    this.#call = call
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Writes one frame; false means the HTTP/2 window is full: wait for onDrain. */
  send(msg: (Partial<PbPeerMessage> & { body?: string }) | EncodedPeerMessage): boolean {
    if (this.#closed) return false
    return this.#call.write(msg as PbPeerMessage)
  }

  /**
   * Stops reading frames (receiver backpressure: the HTTP/2 window then fills and the
   * sender's writes report it). A paused link is not judged by missed heartbeats.
   */
  pause(): void {
    if (this.paused || this.#closed) return
    this.paused = true
    this.#call.pause()
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    this.lastSeen = Date.now()
    if (!this.#closed) this.#call.resume()
  }

  onDrain(cb: () => void): void {
    this.#call.once('drain', cb)
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    if ('cancel' in this.#call) this.#call.cancel()
    else this.#call.end()
  }

  markClosed(): void {
    this.#closed = true
  }
}

export interface LinkEvents {
  /** A link to `peerId` became the active one; `hello` is what the peer said. */
  onUp(link: Link, hello: PbHello): void
  onMessage(link: Link, msg: PbPeerMessage): void
  onDown(link: Link, reason: string): void
  /** Our Hello, built fresh for every link (epoch and digests). */
  hello(): Partial<PbHello>
  /** Called once every heartbeatMs, before the heartbeats are sent. */
  tick(): void
  /** A heartbeat frame for `link`, sent every heartbeatMs. */
  heartbeat(link: Link): Partial<PbPeerMessage>
}

export interface PeerLinksOptions {
  workerId: string
  heartbeatMs: number
  missedBeats: number
  log: Logger
  events: LinkEvents
}

interface Dialing {
  address: string
  client: grpc.Client | undefined
  attempt: number
  timer: NodeJS.Timeout | undefined
  inFlight: boolean
}

export interface PeerLinkHooks {
  /** Test hook: frames from this peer are discarded as if the network lost them. */
  partitioned?(peerId: string): boolean
}

export class PeerLinks {
  readonly #o: PeerLinksOptions
  hooks: PeerLinkHooks = {}
  #active = new Map<string, Link>()
  #targets = new Map<string, Dialing>()
  #timer: NodeJS.Timeout
  #lastTick = Date.now()
  #closed = false

  constructor(opts: PeerLinksOptions) {
    this.#o = opts
    this.#timer = setInterval(() => this.#tick(), opts.heartbeatMs)
    this.#timer.unref()
  }

  get(peerId: string): Link | undefined {
    return this.#active.get(peerId)
  }

  isUp(peerId: string): boolean {
    return this.#active.has(peerId)
  }

  links(): Link[] {
    return [...this.#active.values()]
  }

  /** The peers this node should keep a link to (from the ring spec, without itself). */
  setPeers(peers: Array<{ id: string; address: string }>): void {
    const wanted = new Map(peers.filter((p) => p.id !== this.#o.workerId).map((p) => [p.id, p.address]))
    for (const [id, d] of this.#targets) {
      if (wanted.get(id) === d.address) continue
      this.#stopDialing(id)
      this.#active.get(id)?.close()
    }
    for (const [id, address] of wanted) {
      if (this.#targets.has(id)) continue
      this.#targets.set(id, { address, client: undefined, attempt: 0, timer: undefined, inFlight: false })
      this.#dialSoon(id, 0)
    }
  }

  /** Server side of Peer.Link: a peer dialed us. */
  accept(call: grpc.ServerDuplexStream<PbPeerMessage, PbPeerMessage>): void {
    if (this.#closed) {
      call.end()
      return
    }
    this.#handshake(call, undefined)
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
    for (const id of [...this.#targets.keys()]) this.#stopDialing(id)
    for (const link of [...this.#active.values()]) link.close()
  }

  #stopDialing(id: string): void {
    const d = this.#targets.get(id)
    if (!d) return
    if (d.timer) clearTimeout(d.timer)
    d.client?.close()
    this.#targets.delete(id)
  }

  #dialSoon(id: string, attempt: number): void {
    const d = this.#targets.get(id)
    if (!d || d.timer || d.inFlight || this.#closed) return
    // full jitter: uniform in [0, min(cap, base * 2^attempt)], at least 10 ms
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt)
    // the higher ID holds back its first dial for two heartbeats so that normally only the
    // preferred (lower-ID) side dials and no duplicate has to be torn down
    const first = this.#o.workerId < id ? 0 : 2 * this.#o.heartbeatMs
    const delay = attempt === 0 ? first : Math.max(10, Math.random() * ceiling)
    d.timer = setTimeout(() => {
      d.timer = undefined
      this.#dial(id)
    }, delay)
  }

  #dial(id: string): void {
    const d = this.#targets.get(id)
    if (!d || this.#closed || this.#active.has(id) || d.inFlight) return
    d.inFlight = true
    if (!d.client) d.client = new (ringmqGrpc().Peer)(d.address, grpc.credentials.createInsecure(), CLIENT_OPTIONS)
    const call = (d.client as unknown as { Link(opts: grpc.CallOptions): grpc.ClientDuplexStream<PbPeerMessage, PbPeerMessage> }).Link({
      waitForReady: false,
    } as grpc.CallOptions)
    this.#handshake(call, id)
  }

  #dialEnded(id: string, ok: boolean): void {
    const d = this.#targets.get(id)
    if (!d) return
    d.inFlight = false
    d.attempt = ok ? 0 : d.attempt + 1
  }

  /** Hello exchange on a new stream; `expected` is the peer ID when we dialed. */
  #handshake(call: Call, expected: string | undefined): void {
    const me = this.#o.workerId
    let link: Link | undefined
    let settled = false
    const helloTimeout = setTimeout(() => fail('hello timeout'), Math.max(2_000, this.#o.heartbeatMs * this.#o.missedBeats))
    const fail = (reason: string): void => {
      clearTimeout(helloTimeout)
      if (!settled) {
        settled = true
        if (expected) {
          this.#dialEnded(expected, false)
          this.#dialSoon(expected, this.#targets.get(expected)?.attempt ?? 1)
        }
        this.#o.log.debug('peer handshake failed', { peer: expected, reason })
      }
      if ('cancel' in call) call.cancel()
      else call.end()
    }
    call.on('error', (err: Error) => {
      if (link) this.#lost(link, err.message)
      else fail(err.message)
    })
    call.on('end', () => {
      if (link) this.#lost(link, 'stream ended')
      else fail('stream ended')
    })
    call.on('close', () => {
      if (link) this.#lost(link, 'stream closed')
    })
    // server side: the dialer cancelled; grpc-js signals it with 'cancelled' (and usually 'end')
    call.on('cancelled', () => {
      if (link) this.#lost(link, 'cancelled by peer')
      else fail('cancelled by peer')
    })
    call.on('data', (msg: PbPeerMessage) => {
      if (link) {
        if (this.hooks.partitioned?.(link.peerId)) return
        link.lastSeen = Date.now()
        if (this.#active.get(link.peerId) === link) this.#o.events.onMessage(link, msg)
        return
      }
      if (settled) return
      if (msg.body !== 'hello' || !msg.hello.worker_id || msg.hello.worker_id === me) return fail('bad hello')
      if (expected && msg.hello.worker_id !== expected) return fail(`dialed ${expected}, answered ${msg.hello.worker_id}`)
      if (this.hooks.partitioned?.(msg.hello.worker_id)) return
      settled = true
      clearTimeout(helloTimeout)
      const peerId = msg.hello.worker_id
      if (!expected) call.write({ body: 'hello', hello: { ...this.#o.events.hello(), worker_id: me, protocol: WIRE_PROTOCOL } } as PbPeerMessage)
      link = new Link(peerId, expected ? me : peerId, call)
      if (expected) this.#dialEnded(expected, true)
      this.#register(link, msg.hello)
    })
    if (expected) call.write({ body: 'hello', hello: { ...this.#o.events.hello(), worker_id: me, protocol: WIRE_PROTOCOL } } as PbPeerMessage)
  }

  #register(link: Link, hello: PbHello): void {
    const current = this.#active.get(link.peerId)
    if (current && !current.closed) {
      const preferred = (l: Link): boolean => l.dialer === (this.#o.workerId < link.peerId ? this.#o.workerId : link.peerId)
      // keep the link dialed by the lower ID; between two of the same kind keep the newer
      const keepCurrent = preferred(current) && !preferred(link)
      if (keepCurrent) {
        link.close()
        return
      }
      this.#active.delete(link.peerId)
      current.close()
      this.#o.events.onDown(current, 'superseded')
    }
    link.protocol = hello.protocol
    this.#active.set(link.peerId, link)
    this.#o.log.info('peer link up', { peer: link.peerId, dialer: link.dialer })
    this.#o.events.onUp(link, hello)
  }

  #lost(link: Link, reason: string): void {
    link.markClosed()
    if (this.#active.get(link.peerId) !== link) return
    this.#active.delete(link.peerId)
    this.#o.log.info('peer link down', { peer: link.peerId, reason })
    this.#o.events.onDown(link, reason)
    this.#dialSoon(link.peerId, 1)
  }

  #tick(): void {
    this.#o.events.tick()
    const now = Date.now()
    const silentLimit = this.#o.heartbeatMs * this.#o.missedBeats
    // if this process itself was stalled (GC, a long synchronous task), frames that arrived
    // meanwhile are still unread: judge peers only after one normal interval
    const stalled = now - this.#lastTick > 2 * this.#o.heartbeatMs
    this.#lastTick = now
    for (const link of [...this.#active.values()]) {
      if (!stalled && !link.paused && now - link.lastSeen > silentLimit) {
        link.close()
        this.#lost(link, `${this.#o.missedBeats} heartbeats missed`)
        continue
      }
      link.send(this.#o.events.heartbeat(link))
    }
  }
}

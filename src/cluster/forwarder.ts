// Cross-worker publish, sending side: one queue per peer, flushed as a PublishBatch once per
// event-loop turn (setImmediate) or as soon as it holds `maxBatch` messages / `maxBatchBytes`.
// At a high rate to a peer (HOLD_RATE messages per ms and more, measured over recent batches)
// the flush waits HOLD_MS instead of one turn: each batch costs both workers a gRPC message
// whatever it holds (tens of microseconds on each side plus a wake-up of the receiver, see
// bench/grpc-cost.ts), while at 20,000 msg/s one turn holds one or two messages. 2 ms was chosen
// over 1 ms: half the batches, for 1 ms more latency, and only above 5,000 msg/s to one peer.
// Below that rate a hold would cost latency for nothing. A held batch goes out at the end of the
// first client read after it is HOLD_MS old (`readDone`, called by the broker; at such a rate
// reads come every few tens of microseconds), or, when reads stop, at one backstop timer shared
// by all held batches, also at HOLD_MS.
//
//   forward(peer, msg, done) -> queue[peer] --(setImmediate | readDone after HOLD_MS | backstop | full batch)--> PublishBatch on the link
//                               pending[msgId] = done <----------------- PublishAck{ok_ranges, failed_ids}: done.settle()
//                               (msgId: one increasing sequence per peer; pending-acks.ts)
//
// Ordering: one queue and one ordered stream per peer, so messages from one publisher reach a
// peer in the order `forward` was called (the receiver hands them to its broker in arrival
// order, see grpc-fabric.ts).
// Backpressure: when the stream's write() reports a full HTTP/2 window the queue stops
// flushing until 'drain'; the queue is bounded (`maxQueued`), and a forward that does not fit
// is dropped and counted (reason buffer_full), never blocking other peers.
// Failure: a peer without a link (down) drops QoS 0 (reason peer_down) and fails QoS 1/2 at
// once (within the call); when a link goes down, everything queued or awaiting an ack on it is
// dropped/failed (reason link_lost). The broker decides what a failure means for its publisher.
// QoS 1/2 completion is a callback (`Settle`), not a promise: a promise with its reactions and
// microtask per message was the largest cost of forwarded QoS 1 on this side.

import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import { errPeerDown, RingmqError } from '../errors.js'
import type { Logger } from '../log.js'
import type { BrokerMessage } from '../mqtt/message.js'
import type { Settle } from '../../worker/commit.js'
import type { GroupKey } from '../../worker/fabric.js'
import type { FabricMetrics } from './metrics.js'
import { forEachAckRange } from './ack-ranges.js'
import { encodeMessage } from './message-codec.js'
import { PACKED_VERSION, PACKED_VERSION_NO_FRAMES, type PackedEntry } from './packed-batch.js'
import { encodePublishBatch } from './peer-codec.js'
import { PendingAcks } from './pending-acks.js'
import type { Link } from './peer-link.js'
import type { PbForwardedMessage, PbPublishAck } from './proto-types.js'

export interface ForwarderOptions {
  /** per-peer bound on unsent messages */
  maxQueued: number
  /** per-peer bound on unsent bytes (payload + topic + overhead) */
  maxQueuedBytes: number
  maxBatch: number
  maxBatchBytes: number
  metrics: FabricMetrics
  log: Logger
}

interface Queued extends PackedEntry {
  size: number
}

/** Hello.protocol from which a peer reads PublishBatch.packed in the form of packed-batch.ts. */
export const PACKED_BATCH_REVISION = 3
/** Hello.protocol from which packed batches may carry PUBLISH frames (packed-batch.ts, version 4). */
const FRAMES_REVISION = 4

/** the packed field of a batch sent as ForwardedMessages (peers before revision 3) */
const EMPTY = Buffer.alloc(0)

/** rough wire size of one message, for the byte bounds (UTF-16 units: no byteLength call per message) */
const sizeOf = (msg: BrokerMessage): number => msg.payload.length + msg.topic.length + 64

class PeerQueue {
  constructor(readonly peerId: string) {}
  link: Link | undefined
  /** the peer reads packed batches (its Hello.protocol) */
  packed = false
  /** the packed version it reads */
  packedVersion = PACKED_VERSION
  queue: Queued[] = []
  queuedBytes = 0
  /** the next message id on this link: one increasing sequence per peer, so acks are few runs */
  nextMsgId = 1
  pending = new PendingAcks()
  /**
   * Batches with QoS 1/2 messages awaiting acks, oldest first: the highest message ID in each
   * and when it was sent (for the ack latency, observed once per ack frame, not per message).
   */
  sentIds: number[] = []
  sentAt: number[] = []
  scheduled = false
  /** performance.now() when the batch being held started (in Forwarder's held set) */
  heldSince = 0
  /** performance.now() of the last batch sent */
  lastFlush = -Infinity
  /** recent messages per ms to this peer (moving average over batches) */
  rate = 0
  blocked = false
  dropCounters: Record<'peer_down' | 'buffer_full', { inc(): void }> | undefined
}

/**
 * how long a batch may wait for more messages at a high rate (ms), also when no client read
 * comes to release it: reads stop exactly when publishers wait for what is held (a QoS 1/2
 * window, a request/response loop). A backstop at 3 x HOLD_MS cut a single closed-loop
 * publisher's throughput to a third (1 -> 8 fan-out across workers: 99,000 deliveries/s, 239,000
 * at HOLD_MS, with less CPU per message; CPU at 20,000 msg/s the same within the noise).
 */
const HOLD_MS = 2
/** messages per ms from which batches are held (5,000 msg/s to one peer) */
const HOLD_RATE = 5

export const errBufferFull = (peer: string): RingmqError => new RingmqError('ERR_FORWARD_BUFFER_FULL', `forward buffer to ${peer} is full`)

export class Forwarder {
  readonly #o: ForwarderOptions
  #peers = new Map<string, PeerQueue>()
  #lastPeer: PeerQueue | null = null
  #nextBatchId = 1
  /** queues holding a batch for more messages (high rate) */
  #held = new Set<PeerQueue>()
  #backstop: NodeJS.Timeout | null = null

  constructor(opts: ForwarderOptions) {
    this.#o = opts
  }

  #peer(id: string): PeerQueue {
    // consecutive forwards mostly go to the same peer (one client read, one topic)
    if (id === this.#lastPeer?.peerId) return this.#lastPeer
    let q = this.#peers.get(id)
    if (!q) {
      q = new PeerQueue(id)
      this.#peers.set(id, q)
    }
    this.#lastPeer = q
    return q
  }

  queued(peerId: string): number {
    return this.#peers.get(peerId)?.queue.length ?? 0
  }

  /** A link is up; `protocol` is the wire revision from the peer's Hello. */
  attach(link: Link, protocol = 1): void {
    const q = this.#peer(link.peerId)
    q.link = link
    q.packed = protocol >= PACKED_BATCH_REVISION
    q.packedVersion = protocol >= FRAMES_REVISION ? PACKED_VERSION : PACKED_VERSION_NO_FRAMES
    q.blocked = false
  }

  /** The link to `peerId` went down: drop what is queued, reject what awaits an ack. */
  detach(peerId: string, link: Link): void {
    const q = this.#peers.get(peerId)
    if (!q || q.link !== link) return
    q.link = undefined
    const err = errPeerDown(`link to ${peerId} lost`)
    if (q.queue.length > 0) this.#o.metrics.forwardDrops.inc({ peer: peerId, reason: 'link_lost' }, q.queue.filter((m) => m.msg.qos === 0).length)
    q.queue = []
    q.queuedBytes = 0
    const pending = q.pending.drain()
    q.sentIds = []
    q.sentAt = []
    if (pending.length > 0) this.#o.metrics.forwardDrops.inc({ peer: peerId, reason: 'link_lost' }, pending.length)
    for (const done of pending) done.settle(err)
  }

  /**
   * Queues `msg` for `peerId`. QoS 1/2: `done` (not null) is settled once, maybe within this
   * call. `frame`: the plain QoS 0 PUBLISH of `msg` if the broker has it, carried to peers that read it.
   */
  forward(peerId: string, msg: BrokerMessage, groups: GroupKey[], normal: boolean, done: Settle | null, frame: Buffer | null = null): void {
    const q = this.#peer(peerId)
    if (!q.link) return this.#drop(q, done, 'peer_down')
    const size = sizeOf(msg)
    if (q.queue.length >= this.#o.maxQueued || q.queuedBytes + size > this.#o.maxQueuedBytes) {
      return this.#drop(q, done, 'buffer_full')
    }
    const msgId = msg.qos > 0 ? q.nextMsgId++ : 0
    // encoded at flush, in the form the peer reads
    q.queue.push({ msg, msgId, groups, normal, frame, size })
    q.queuedBytes += size
    if (msgId !== 0) q.pending.add(msgId, done!)
    if (q.queue.length >= this.#o.maxBatch || q.queuedBytes >= this.#o.maxBatchBytes) this.#flush(peerId, q)
    else if (!q.scheduled) {
      q.scheduled = true
      if (q.rate >= HOLD_RATE) this.#hold(q)
      else
        setImmediate(() => {
          q.scheduled = false
          this.#flush(peerId, q)
        })
    }
  }

  /** A client read was handled: held batches that waited HOLD_MS go now. */
  readDone(): void {
    if (this.#held.size > 0) this.#release(performance.now())
  }

  #hold(q: PeerQueue): void {
    q.heldSince = performance.now()
    this.#held.add(q)
    if (this.#backstop === null) this.#backstop = setTimeout(this.#onBackstop, HOLD_MS)
  }

  #release(now: number): void {
    for (const q of this.#held) {
      if (now - q.heldSince < HOLD_MS) continue
      this.#held.delete(q)
      q.scheduled = false
      this.#flush(q.peerId, q)
    }
  }

  #onBackstop = (): void => {
    this.#backstop = null
    const now = performance.now()
    this.#release(now)
    if (this.#held.size === 0) return
    // next when the oldest batch still held is HOLD_MS old
    let oldest = now
    for (const q of this.#held) if (q.heldSince < oldest) oldest = q.heldSince
    this.#backstop = setTimeout(this.#onBackstop, Math.max(1, oldest + HOLD_MS - now))
  }

  onAck(peerId: string, ack: PbPublishAck): void {
    const q = this.#peers.get(peerId)
    if (!q) return
    // the ack latency is observed once per frame (the batch of its first id): a histogram
    // observation, or a clock read at send, per message would cost more than the ack itself
    let first = true
    const ok = (id: number): void => {
      const done = q.pending.take(id)
      if (done === undefined) return
      if (first) {
        first = false
        this.#observeAck(q, id)
      }
      done.settle(null)
    }
    for (const id of ack.msg_ids) ok(id)
    if (ack.ok_ranges.length > 0) {
      try {
        forEachAckRange(ack.ok_ranges, ok)
      } catch (err) {
        // a peer of the same cluster never sends this; its messages stay pending until the link goes
        this.#o.metrics.receiveDrops.inc({ peer: peerId, reason: 'malformed_ack' })
        this.#o.log.warn('malformed publish ack', { peer: peerId, err: err as Error })
      }
    }
    for (const id of ack.failed_ids) {
      const done = q.pending.take(id)
      if (done === undefined) continue
      this.#o.metrics.forwardDrops.inc({ peer: peerId, reason: 'rejected_by_peer' })
      done.settle(new RingmqError('ERR_FORWARD_REJECTED', `peer ${peerId} could not take the message`))
    }
  }

  /** Observes the ack latency of the batch that carried `id`; earlier batches are forgotten. */
  #observeAck(q: PeerQueue, id: number): void {
    const ids = q.sentIds
    let n = 0
    while (n < ids.length && ids[n]! < id) n++
    if (n < ids.length) this.#o.metrics.forwardAckSeconds.observe({ peer: q.peerId }, (performance.now() - q.sentAt[n]!) / 1000)
    if (n > 0) {
      ids.splice(0, n)
      q.sentAt.splice(0, n)
    }
  }

  close(): void {
    for (const [id, q] of this.#peers) if (q.link) this.detach(id, q.link)
    if (this.#backstop !== null) clearTimeout(this.#backstop)
    this.#backstop = null
    this.#held.clear()
  }

  /**
   * Drops a message that cannot be queued. This is the path of an overload, so it must stay
   * cheap: a labelled counter kept per peer, and an error (a stack trace) only for a QoS 1/2
   * message whose publisher waits. Building both per message made a full queue cost more per
   * message than sending did, so a worker falling behind could not catch up.
   */
  #drop(q: PeerQueue, done: Settle | null, reason: 'peer_down' | 'buffer_full'): void {
    const counters = (q.dropCounters ??= {
      peer_down: this.#o.metrics.forwardDrops.labels({ peer: q.peerId, reason: 'peer_down' }),
      buffer_full: this.#o.metrics.forwardDrops.labels({ peer: q.peerId, reason: 'buffer_full' }),
    })
    counters[reason].inc()
    if (done !== null) done.settle(reason === 'peer_down' ? errPeerDown(`peer ${q.peerId} is down`) : errBufferFull(q.peerId))
  }

  #flush(peerId: string, q: PeerQueue): void {
    while (q.link && !q.blocked && q.queue.length > 0) {
      // a batch ends at maxBatch messages or maxBatchBytes, but holds at least one message
      let n = 0
      let bytes = 0
      while (n < q.queue.length && n < this.#o.maxBatch && (n === 0 || bytes + q.queue[n]!.size <= this.#o.maxBatchBytes)) bytes += q.queue[n++]!.size
      const entries = q.queue.splice(0, n)
      q.queuedBytes -= bytes
      const batchId = this.#nextBatchId++
      const ok = q.packed
        ? q.link.send(encodePublishBatch(batchId, entries, q.packedVersion))
        : q.link.send({
            body: 'publish_batch',
            publish_batch: { batch_id: batchId, messages: entries.map((e) => encodeMessage(e.msg, e.msgId, e.groups as string[], e.normal) as PbForwardedMessage), packed: EMPTY },
          })
      const now = performance.now()
      const lastId = lastMsgId(entries)
      if (lastId !== 0) {
        q.sentIds.push(lastId)
        q.sentAt.push(now)
      }
      // a batch after a pause weighs as a low rate; back-to-back batches as their own rate
      q.rate = 0.7 * q.rate + 0.3 * (entries.length / Math.max(now - q.lastFlush, HOLD_MS / 4))
      q.lastFlush = now
      this.#o.metrics.forwardBatches.inc({ peer: peerId })
      this.#o.metrics.forwardMessages.inc({ peer: peerId }, entries.length)
      if (!ok) {
        const link = q.link
        q.blocked = true
        link.onDrain(() => {
          if (q.link !== link) return
          q.blocked = false
          this.#flush(peerId, q)
        })
      }
    }
  }
}

/** The highest message ID in a batch (IDs grow in queue order), 0 when it holds only QoS 0. */
function lastMsgId(entries: readonly PackedEntry[]): number {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.msgId !== 0) return entries[i]!.msgId
  return 0
}

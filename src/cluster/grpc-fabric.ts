// The gRPC cluster fabric: implements `Fabric` (worker/fabric.ts) over peer links.
//
// How a worker wires it (the whole interface):
//
//   const { fabric, address, isAlive, status, close } = await createGrpcFabric({
//     workerId: 'w1',
//     placement: () => currentPlacement,   // or a Placement; read on every use
//     broker,                               // BrokerSurface of the local broker
//     listen: { host: '0.0.0.0', port: 7001 },   // --peer; serves Peer and Admin
//     log, registry,
//     heartbeatMs: 1000, missedBeats: 3,    // --heartbeat-ms, --missed-beats
//     onRing: (spec) => persist + swap placement,  // a higher epoch was adopted
//     hlcStore: { load, save },             // HLC high-water in the LMDB meta db
//     describe: { sessions, connections, isLive },  // for Admin Status/Locate
//   })
//   // give `fabric` to the broker; `isAlive(id)` is the liveness for placement.owner()
//   // on shutdown: await close()  (closes links and the gRPC server)
//
// Ring epochs: a node that hears a higher epoch in a peer's Hello or Heartbeat asks that peer
// for its spec on the same link (RingRequest -> RingUpdate; the link may be incoming, so the
// peer's address may be unknown) and adopts it: `onRing(spec)` is called, links follow the
// new worker list, and the next heartbeats spread the epoch. Admin.ApplyRing compare-and-sets
// the same way. When `placement` is a function, the fabric uses whichever of its result and
// the last adopted spec has the higher epoch, so it is right even before `onRing` has run.
//
// Receiving forwarded publishes: messages of a batch are handed to
// broker.deliverForwarded in arrival order without waiting for the previous one to settle;
// the broker must fix each message's order synchronously at call time (per-publisher order).
// QoS 0 is delivered within the call and never acknowledged. A QoS 1/2 message is given a
// ForwardedAck, which the broker settles once it delivered or durably queued the message (within
// the call for clean sessions): the sender then gets the id acknowledged, or reported failed.

import type { Buffer } from 'node:buffer'
import type { Registry } from 'prom-client'
import type { Settle } from '../../worker/commit.js'
import type { BrokerSurface, Fabric, GroupKey, RemoteInterest, RouteChange } from '../../worker/fabric.js'
import type { HostPort } from '../config/flags.js'
import type { Logger } from '../log.js'
import type { BrokerMessage } from '../mqtt/message.js'
import { Placement } from '../ring/placement.js'
import { parseRingSpec, type RingSpec } from '../ring/spec.js'
import type { ApplyRingResult, AdminHandlers, LocateInfo, StatusInfo } from './admin-service.js'
import { startPeerServer, type GrpcServerHandle } from './grpc-server.js'
import { Hlc, type HlcStore } from './hlc.js'
import { encodeAckRanges } from './ack-ranges.js'
import { decodeMessage } from './message-codec.js'
import { FramedRecord, unpackRecords, type PackedEntry } from './packed-batch.js'
import { FabricMetrics } from './metrics.js'
import { Forwarder, PACKED_BATCH_REVISION } from './forwarder.js'
import { PeerLinks, type Link, type PeerLinkHooks } from './peer-link.js'
import type { PbHello, PbPeerMessage, PbPublishAck, PbPublishBatch } from './proto-types.js'
import { RetainedRegisters } from './retained-registers.js'
import { RetainedSync } from './retained-sync.js'
import { decodeRing, encodeRing } from './ring-codec.js'
import { RouteSync, type RouteSyncHooks } from './route-sync.js'
import { SessionClaims } from './session-claims.js'

/** Heartbeat ticks between reconciliations of the local route set with the broker's. */
const RECONCILE_TICKS = 10
/** Hello.protocol from which a peer reads PublishAck.ok_ranges */
const ACK_RANGES_REVISION = 3
/** Above this clock difference to a peer a warning is logged once. */
const CLOCK_SKEW_WARN_MS = 1000
/** MQTT 5 DISCONNECT reason "Session taken over". */
const SESSION_TAKEN_OVER = 0x8e

export interface GrpcFabricOptions {
  workerId: string
  placement: Placement | (() => Placement)
  broker: BrokerSurface
  listen: HostPort
  log: Logger
  registry: Registry
  /** heartbeat interval, default 1000 ms */
  heartbeatMs?: number
  /** a silent peer is down after this many heartbeat intervals, default 3 */
  missedBeats?: number
  /** a higher ring epoch was adopted (from a peer or Admin.ApplyRing): persist it */
  onRing?: (spec: RingSpec) => void
  /** persists the HLC high-water so that a restart never goes backwards */
  hlcStore?: HlcStore
  /** for Admin Status/Locate */
  describe?: { sessions(): number; connections(): number; isLive(clientId: string): boolean }
  /** how long claimSession waits for answers, default 1000 ms */
  claimTimeoutMs?: number
  /** how long a retained clear is remembered, default 24 h */
  tombstoneTtlMs?: number
  /**
   * per-peer forward queue bound (messages), default 100000: a worker reading many clients in
   * one event-loop turn queues what it reads until the turn ends and HTTP/2 writes it (64 MiB
   * also bounds it; docs/cluster.md)
   */
  maxQueued?: number
  /** messages per PublishBatch, default 500 */
  maxBatch?: number
  /** receiver backpressure: stop reading a link above this many unsettled deliveries (resume at half), default 10000 */
  maxReceiving?: number
}

export type FabricTestHooks = RouteSyncHooks & PeerLinkHooks

export interface GrpcFabric {
  fabric: Fabric
  /** where the Peer/Admin server listens (actual port when `listen.port` was 0) */
  address: HostPort
  /** liveness as this node sees it; this worker itself is always alive */
  isAlive(workerId: string): boolean
  ring(): RingSpec
  applyRing(spec: RingSpec, expectedEpoch: number): ApplyRingResult
  status(): StatusInfo
  locate(clientId: string): LocateInfo
  /** test hooks: drop or corrupt route deltas, cut a peer off (partition) */
  readonly hooks: FabricTestHooks
  close(): Promise<void>
}

export async function createGrpcFabric(opts: GrpcFabricOptions): Promise<GrpcFabric> {
  const impl = new GrpcFabricImpl(opts)
  await impl.start()
  return impl
}

class GrpcFabricImpl implements GrpcFabric {
  /** one closure for every route match (a new one per publish was an allocation per message) */
  readonly #isUp = (id: string): boolean => this.#links.isUp(id)
  readonly #o: GrpcFabricOptions
  readonly #me: string
  readonly #log: Logger
  readonly #metrics: FabricMetrics
  readonly #links: PeerLinks
  readonly #routes: RouteSync
  readonly #retained: RetainedSync
  readonly #forwarder: Forwarder
  readonly #claims: SessionClaims
  #adopted: Placement | undefined
  #server: GrpcServerHandle | undefined
  #ringAsked = new Map<string, number>()
  /** peer -> its heartbeat time minus our clock at receipt, ms */
  #skew = new Map<string, number>()
  #followedEpoch = -1
  #ticks = 0
  #acks = new Map<Link, { ok: number[]; failed: number[] }>()
  /** forwarded messages handed to the broker and not settled yet, per link */
  #receiving = new Map<Link, number>()
  /** a link stops being read above this many unsettled forwarded deliveries, and resumes at half */
  get #maxReceiving(): number {
    return this.#o.maxReceiving ?? 10_000
  }
  #ackScheduled = false
  #expiryTimer: NodeJS.Timeout | undefined
  #closed = false
  #hooks: FabricTestHooks = {}
  readonly fabric: Fabric

  constructor(o: GrpcFabricOptions) {
    this.#o = o
    this.#me = o.workerId
    this.#log = o.log.child({ component: 'fabric' })
    const heartbeatMs = o.heartbeatMs ?? 1000
    const missedBeats = o.missedBeats ?? 3
    this.#metrics = new FabricMetrics(o.registry, {
      epoch: () => this.#placement().spec.epoch,
      peers: () =>
        this.#peerStatus().map((p) => ({ id: p.id, up: p.up, queued: p.queued ?? 0, routes: p.routes ?? 0, skewMs: this.#skew.get(p.id) })),
      localRoutes: () => this.#routes.local.size,
      retained: () => this.#retained.registers.size,
    })
    this.#links = new PeerLinks({
      workerId: this.#me,
      heartbeatMs,
      missedBeats,
      log: this.#log,
      events: {
        hello: () => this.#hello(),
        tick: () => this.#tick(),
        heartbeat: () => this.#heartbeat(),
        onUp: (link, hello) => this.#onUp(link, hello),
        onDown: (link, reason) => this.#onDown(link, reason),
        onMessage: (link, msg) => this.#onMessage(link, msg),
      },
    })
    const links = (): Link[] => this.#links.links()
    this.#routes = new RouteSync({ links, log: this.#log, metrics: this.#metrics, missedBeats })
    const hlc = new Hlc({ store: o.hlcStore })
    const registers = new RetainedRegisters({ workerId: this.#me, hlc, tombstoneTtlMs: o.tombstoneTtlMs ?? 24 * 3600_000 })
    this.#retained = new RetainedSync({ registers, broker: o.broker, links, metrics: this.#metrics, log: this.#log })
    this.#forwarder = new Forwarder({
      maxQueued: o.maxQueued ?? 100_000,
      maxQueuedBytes: 64 << 20,
      maxBatch: o.maxBatch ?? 500,
      maxBatchBytes: 1 << 20,
      log: this.#log,
      metrics: this.#metrics,
    })
    this.#claims = new SessionClaims({ timeoutMs: o.claimTimeoutMs ?? 1000 })
    // one hooks object shared by the parts that consult it
    this.#routes.hooks = this.#hooks
    this.#links.hooks = this.#hooks
    this.fabric = {
      routeAdded: (r: RouteChange) => this.#routes.added(r),
      routeRemoved: (r: RouteChange) => this.#routes.removed(r),
      remoteInterest: (topic: string): readonly RemoteInterest[] => this.#routes.table.match(topic, this.#isUp),
      forward: (workerId: string, msg: BrokerMessage, groups: GroupKey[], normal: boolean, done: Settle | null, frame: Buffer | null) =>
        this.#forwarder.forward(workerId, msg, groups, normal, done, frame),
      retainedChanged: (topic: string, msg: BrokerMessage | null) => this.#retained.localChange(topic, msg),
      claimSession: (clientId: string) => this.#claimSession(clientId),
      readDone: () => this.#forwarder.readDone(),
      close: () => this.close(),
    }
  }

  get hooks(): FabricTestHooks {
    return this.#hooks
  }

  get address(): HostPort {
    return this.#server!.address
  }

  async start(): Promise<void> {
    this.#routes.seed(this.#o.broker.routeSnapshot())
    this.#retained.seedFromBroker()
    const admin: AdminHandlers = {
      nodeId: this.#me,
      role: 'worker',
      getRing: () => this.ring(),
      applyRing: (spec, expected) => this.applyRing(spec, expected),
      status: () => this.status(),
      locate: (id) => this.locate(id),
    }
    this.#server = await startPeerServer(this.#o.listen, { peer: (call) => this.#links.accept(call), admin })
    const ttl = this.#o.tombstoneTtlMs ?? 24 * 3600_000
    this.#expiryTimer = setInterval(() => this.#retained.expireTombstones(), Math.max(100, Math.min(60_000, ttl / 2)))
    this.#expiryTimer.unref()
    this.#followRing()
    this.#log.info('fabric listening', { peer: `${this.address.host}:${this.address.port}`, epoch: this.ring().epoch })
  }

  isAlive(workerId: string): boolean {
    return workerId === this.#me || this.#links.isUp(workerId)
  }

  ring(): RingSpec {
    return this.#placement().spec
  }

  applyRing(spec: RingSpec, expectedEpoch: number): ApplyRingResult {
    const current = this.ring().epoch
    let valid: RingSpec
    try {
      valid = parseRingSpec(spec)
    } catch (err) {
      return { ok: false, epoch: current, error: (err as Error).message }
    }
    if (current !== expectedEpoch) return { ok: false, epoch: current, error: `epoch is ${current}, expected ${expectedEpoch}` }
    if (valid.epoch <= current) return { ok: false, epoch: current, error: `new epoch ${valid.epoch} must be higher than ${current}` }
    this.#adopt(valid, 'admin')
    return { ok: true, epoch: valid.epoch }
  }

  status(): StatusInfo {
    const d = this.#o.describe
    return {
      nodeId: this.#me,
      role: 'worker',
      epoch: this.ring().epoch,
      peers: this.#peerStatus(),
      sessions: d?.sessions(),
      connections: d?.connections(),
      localRoutes: this.#routes.local.size,
      retained: this.#retained.registers.size,
    }
  }

  locate(clientId: string): LocateInfo {
    const p = this.#placement()
    return {
      clientId,
      prefs: p.prefs(clientId).map((w) => w.id),
      owner: p.owner(clientId, (id) => this.isAlive(id))?.id,
      liveHere: this.#o.describe?.isLive(clientId) ?? false,
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#expiryTimer)
    this.#claims.close()
    this.#links.close()
    this.#forwarder.close()
    await this.#server?.close()
  }

  #placement(): Placement {
    const p = this.#o.placement
    const given = typeof p === 'function' ? p() : p
    return this.#adopted && this.#adopted.spec.epoch > given.spec.epoch ? this.#adopted : given
  }

  #followRing(): void {
    const spec = this.ring()
    this.#followedEpoch = spec.epoch
    this.#links.setPeers(spec.workers.map((w) => ({ id: w.id, address: w.peer })))
    const ids = new Set(spec.workers.map((w) => w.id))
    for (const peer of this.#routes.table.peers()) if (!ids.has(peer) && !this.#links.isUp(peer)) this.#routes.table.dropPeer(peer)
  }

  #adopt(spec: RingSpec, from: string): void {
    this.#adopted = new Placement(spec)
    this.#metrics.ringAdopted.inc()
    this.#log.info('ring adopted', { epoch: spec.epoch, from })
    this.#o.onRing?.(spec)
    this.#followRing()
    // spread at once rather than at the next heartbeat
    const hb = this.#heartbeat()
    for (const link of this.#links.links()) link.send(hb)
  }

  #tick(): void {
    // the worker may have swapped its placement itself (e.g. a ring file): follow it
    if (this.ring().epoch !== this.#followedEpoch) this.#followRing()
    if (++this.#ticks % RECONCILE_TICKS === 0) this.#routes.reconcile(this.#o.broker.routeSnapshot())
  }

  #hello(): Partial<PbHello> {
    this.#routes.flush()
    return { epoch: this.ring().epoch, route_digest: this.#routes.local.digest, retained_digest: this.#retained.registers.digest }
  }

  #heartbeat(): Partial<PbPeerMessage> {
    this.#routes.flush()
    return {
      body: 'heartbeat',
      heartbeat: {
        epoch: this.ring().epoch,
        route_digest: this.#routes.local.digest,
        retained_digest: this.#retained.registers.digest,
        time: Date.now(),
        route_seq: this.#routes.local.seq,
      },
    }
  }

  #onUp(link: Link, hello: PbHello): void {
    this.#forwarder.attach(link, hello.protocol)
    this.#routes.sendSnapshot(link)
    this.#retained.compare(link, hello.retained_digest, true)
    this.#checkEpoch(link, hello.epoch)
  }

  #onDown(link: Link, reason: string): void {
    this.#forwarder.detach(link.peerId, link)
    this.#routes.linkDown(link)
    this.#retained.linkDown(link.peerId)
    this.#claims.peerDown(link.peerId)
    this.#ringAsked.delete(link.peerId)
    this.#acks.delete(link)
    this.#receiving.delete(link)
    this.#log.debug('peer down', { peer: link.peerId, reason })
  }

  #checkEpoch(link: Link, epoch: number): void {
    if (epoch <= this.ring().epoch || this.#ringAsked.get(link.peerId) === epoch) return
    this.#ringAsked.set(link.peerId, epoch)
    link.send({ body: 'ring_request', ring_request: { epoch } })
  }

  #onMessage(link: Link, m: PbPeerMessage): void {
    switch (m.body) {
      case 'heartbeat':
        this.#clockSkew(link.peerId, m.heartbeat.time)
        this.#routes.onHeartbeat(link, m.heartbeat)
        this.#retained.compare(link, m.heartbeat.retained_digest, false)
        this.#checkEpoch(link, m.heartbeat.epoch)
        return
      case 'route_snapshot':
        return this.#routes.onSnapshot(link, m.route_snapshot)
      case 'route_delta':
        return this.#routes.onDelta(link, m.route_delta)
      case 'route_resync_request':
        return this.#routes.sendSnapshot(link)
      case 'publish_batch':
        return this.#onBatch(link, m.publish_batch)
      case 'publish_ack':
        return this.#forwarder.onAck(link.peerId, m.publish_ack)
      case 'retained_set':
        return this.#retained.onSet(m.retained_set)
      case 'retained_digest_request':
        return this.#retained.onDigestRequest(link, m.retained_digest_request)
      case 'retained_catch_up':
        return this.#retained.onCatchUp(link, m.retained_catch_up)
      case 'session_claim':
        return this.#onClaim(link, m.session_claim.client_id, m.session_claim.claim_id)
      case 'session_claim_ack':
        return this.#claims.onAck(link.peerId, m.session_claim_ack.claim_id)
      case 'ring_request':
        link.send({ body: 'ring_update', ring_update: { spec: encodeRing(this.ring()) } })
        return
      case 'ring_update':
        return this.#onRingUpdate(link, m)
      case 'hello':
        return // only valid as the first frame (peer-link.ts)
    }
  }

  #clockSkew(peerId: string, time: number): void {
    const skew = time - Date.now()
    const before = this.#skew.get(peerId)
    this.#skew.set(peerId, skew)
    // LWW of retained messages follows wall clocks through the HLC: say when they disagree
    if (Math.abs(skew) > CLOCK_SKEW_WARN_MS && (before === undefined || Math.abs(before) <= CLOCK_SKEW_WARN_MS)) {
      this.#log.warn('peer clock skew', { peer: peerId, skewMs: skew })
    }
  }

  #onRingUpdate(link: Link, m: Extract<PbPeerMessage, { body: 'ring_update' }>): void {
    if (!m.ring_update.spec || m.ring_update.spec.epoch <= this.ring().epoch) return
    try {
      this.#adopt(parseRingSpec(decodeRing(m.ring_update.spec)), link.peerId)
    } catch (err) {
      this.#log.warn('invalid ring spec from peer', { peer: link.peerId, err: err as Error })
    }
  }

  #onBatch(link: Link, batch: PbPublishBatch): void {
    let records: (PackedEntry | FramedRecord)[]
    if (batch.packed.length > 0) {
      // revision 2 packed batches (a development form) are not read
      if (link.protocol < PACKED_BATCH_REVISION) return this.#malformedBatch(link, new Error(`packed batch from wire revision ${link.protocol}`))
      records = []
      try {
        // the whole batch is read before anything of it is delivered: a malformed one is refused whole
        unpackRecords(batch.packed, (e) => records.push(e))
      } catch (err) {
        return this.#malformedBatch(link, err as Error)
      }
    } else records = batch.messages.map((pb) => ({ msg: decodeMessage(pb), msgId: pb.msg_id, groups: pb.groups, normal: pb.normal }))
    this.#metrics.receivedMessages.inc({ peer: link.peerId }, records.length)
    const broker = this.#o.broker
    let waiting = 0
    for (const r of records) {
      let e: PackedEntry
      if (r instanceof FramedRecord) {
        // the common record: its frame written to the subscriber as it came, no message built
        if (broker.deliverFrame(r.topic, r.publisherId, r.frame, r.v5, r.normal)) continue
        e = r.entry()
      } else e = r
      // QoS 0: delivered within the call and never acknowledged, so it does not count as receiving
      const done = e.msgId === 0 ? null : new ForwardedAck(this, link, e.msgId)
      try {
        broker.deliverForwarded(e.msg, e.groups as string[], e.normal, done, e.frame ?? null)
      } catch (err) {
        // a QoS 1/2 message is reported failed to its sender (and logged by its ack)
        if (done !== null && !done.settled) done.settle(err as Error)
        else this.#log.warn('forwarded delivery failed', { peer: link.peerId, err: err as Error })
        continue
      }
      if (done === null || done.settled) continue
      // waits for a store write: counts as receiving until it settles
      done.counted = true
      waiting++
    }
    if (waiting === 0) return
    const receiving = (this.#receiving.get(link) ?? 0) + waiting
    this.#receiving.set(link, receiving)
    if (receiving > this.#maxReceiving) link.pause()
  }

  /** A peer of the same cluster never sends this: nothing of the batch is delivered. */
  #malformedBatch(link: Link, err: Error): void {
    this.#metrics.receiveDrops.inc({ peer: link.peerId, reason: 'malformed_batch' })
    this.#log.warn('malformed packed batch', { peer: link.peerId, err })
  }

  /** A forwarded message that waited for a store write settled. */
  receivedSettled(link: Link): void {
    const n = (this.#receiving.get(link) ?? 1) - 1
    this.#receiving.set(link, n)
    if (link.paused && n <= this.#maxReceiving / 2) link.resume()
  }

  /** A forwarded QoS 1/2 message could not be delivered. */
  receiveFailed(link: Link, err: Error): void {
    this.#log.warn('forwarded delivery failed', { peer: link.peerId, err })
  }

  /** Acks are coalesced per link and sent once per event-loop turn. */
  ack(link: Link, msgId: number, ok: boolean): void {
    if (link.closed) return
    let a = this.#acks.get(link)
    if (!a) {
      a = { ok: [], failed: [] }
      this.#acks.set(link, a)
    }
    ;(ok ? a.ok : a.failed).push(msgId)
    if (this.#ackScheduled) return
    this.#ackScheduled = true
    setImmediate(() => {
      this.#ackScheduled = false
      for (const [l, acks] of this.#acks) {
        const publish_ack: Partial<PbPublishAck> =
          l.protocol >= ACK_RANGES_REVISION ? { ok_ranges: encodeAckRanges(acks.ok), failed_ids: acks.failed } : { msg_ids: acks.ok, failed_ids: acks.failed }
        l.send({ body: 'publish_ack', publish_ack: publish_ack as PbPublishAck })
      }
      this.#acks.clear()
    })
  }

  #onClaim(link: Link, clientId: string, claimId: number): void {
    this.#o.broker.endSession(clientId, SESSION_TAKEN_OVER).then(
      () => link.send({ body: 'session_claim_ack', session_claim_ack: { claim_id: claimId } }),
      (err: Error) => {
        this.#log.warn('session take-over failed', { clientId, peer: link.peerId, err })
        link.send({ body: 'session_claim_ack', session_claim_ack: { claim_id: claimId } })
      },
    )
  }

  async #claimSession(clientId: string): Promise<void> {
    const links: Link[] = []
    for (const w of this.#placement().prefs(clientId)) {
      if (w.id === this.#me) continue
      const link = this.#links.get(w.id)
      if (link) links.push(link)
    }
    if (links.length === 0) {
      this.#metrics.sessionClaims.inc({ result: 'none' })
      return
    }
    const unanswered = await this.#claims.claim(clientId, links)
    this.#metrics.sessionClaims.inc({ result: unanswered.length === 0 ? 'acked' : 'timeout' })
    if (unanswered.length > 0) this.#log.warn('session claim not answered', { clientId, peers: unanswered })
  }

  #peerStatus(): StatusInfo['peers'] {
    const out = new Map<string, StatusInfo['peers'][number]>()
    const now = Date.now()
    const describe = (id: string, address: string): StatusInfo['peers'][number] => {
      const link = this.#links.get(id)
      return {
        id,
        address,
        up: link !== undefined,
        lastSeenMs: link ? now - link.lastSeen : undefined,
        routes: this.#routes.table.sizeOf(id),
        queued: this.#forwarder.queued(id),
        dialer: link?.dialer,
      }
    }
    for (const w of this.ring().workers) if (w.id !== this.#me) out.set(w.id, describe(w.id, w.peer))
    for (const link of this.#links.links()) if (!out.has(link.peerId)) out.set(link.peerId, describe(link.peerId, ''))
    return [...out.values()]
  }
}

/**
 * The acknowledgement of one forwarded QoS 1/2 message, settled by the broker: within
 * deliverForwarded when nothing had to be waited for, else after a store write.
 */
class ForwardedAck implements Settle {
  settled = false
  /** counted in the link's receiving total (it outlived deliverForwarded) */
  counted = false

  constructor(
    readonly fabric: GrpcFabricImpl,
    readonly link: Link,
    readonly msgId: number,
  ) {}

  settle(err: Error | null): void {
    this.settled = true
    if (this.counted) this.fabric.receivedSettled(this.link)
    if (err !== null) this.fabric.receiveFailed(this.link, err)
    this.fabric.ack(this.link, this.msgId, err === null)
  }
}

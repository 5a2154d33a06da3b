// Route propagation over peer links (the link side of route-table.ts).
//
// Sender: this worker's own RouteSet is the only copy it writes. Changes from the broker are
// coalesced for one event-loop turn into one RouteDelta{seq = previous + 1}, sent on every
// link. A new link gets a RouteSnapshot{seq} first. Heartbeats carry (route_seq, digest).
// Receiver: snapshot replaces the replica; a delta with a gap is dropped and a snapshot
// requested; a heartbeat whose seq is ahead of the replica (a lost delta) or whose digest
// differs at the same seq (drift) also requests a snapshot. One request is outstanding per
// link at a time (retried after `missedBeats` heartbeats without an answer).

import type { RouteChange } from '../../worker/fabric.js'
import type { Logger } from '../log.js'
import type { FabricMetrics } from './metrics.js'
import type { Link } from './peer-link.js'
import type { PbHeartbeat, PbRouteDelta, PbRouteSnapshot } from './proto-types.js'
import { CHUNK_BYTES } from './limits.js'
import { RouteSet, routeKey, type RouteEntry } from './route-set.js'
import { RouteTable } from './route-table.js'

export interface RouteSyncHooks {
  /** Test hook (sender side): return true to drop this outgoing delta; its seq is still used. */
  dropOutgoingDelta?(peerId: string, delta: PbRouteDelta): boolean
  /** Test hook (receiver side): return true to advance seq without applying the delta's content. */
  corruptIncomingDelta?(peerId: string, delta: PbRouteDelta): boolean
}

export class RouteSync {
  readonly local = new RouteSet()
  readonly table = new RouteTable()
  #pendingAdd = new Map<string, RouteEntry>()
  #pendingRemove = new Map<string, RouteEntry>()
  #flushScheduled = false
  #resyncAsked = new Map<string, number>() // peer -> heartbeats seen since asking
  #partial = new Map<Link, RouteEntry[]>() // snapshot chunks received so far
  readonly #links: () => Link[]
  readonly #log: Logger
  readonly #metrics: FabricMetrics
  readonly #missedBeats: number
  hooks: RouteSyncHooks = {}

  constructor(opts: { links: () => Link[]; log: Logger; metrics: FabricMetrics; missedBeats: number }) {
    this.#links = opts.links
    this.#log = opts.log
    this.#metrics = opts.metrics
    this.#missedBeats = opts.missedBeats
  }

  /** Seeds the local set from the broker's snapshot (before any link is up). */
  seed(routes: Array<RouteChange & { count: number }>): void {
    for (const r of routes) this.local.put({ filter: r.filter, group: r.group ?? '', count: r.count })
  }

  /**
   * Brings the local set in line with the broker's own route table (run every few
   * heartbeats): repairs any add, remove or count change the broker failed to report.
   */
  reconcile(routes: Array<RouteChange & { count: number }>): void {
    const seen = new Set<string>()
    for (const r of routes) {
      seen.add(routeKey(r.filter, r.group ?? ''))
      this.added(r)
    }
    for (const e of [...this.local.entries()]) {
      if (!seen.has(routeKey(e.filter, e.group))) this.removed({ filter: e.filter, group: e.group === '' ? null : e.group })
    }
  }

  added(route: RouteChange & { count?: number }): void {
    const e = { filter: route.filter, group: route.group ?? '', count: route.count ?? 1 }
    const key = routeKey(e.filter, e.group)
    const cur = this.local.get(e.filter, e.group)
    if (cur && cur.count === e.count) return
    this.local.put(e)
    this.#pendingRemove.delete(key)
    this.#pendingAdd.set(key, e)
    this.#schedule()
  }

  removed(route: RouteChange): void {
    const group = route.group ?? ''
    const old = this.local.remove(route.filter, group)
    if (!old) return
    const key = routeKey(route.filter, group)
    this.#pendingAdd.delete(key)
    this.#pendingRemove.set(key, old)
    this.#schedule()
  }

  /** Sends pending changes now (before a heartbeat, so its digest matches what was sent). */
  flush(skip?: Link): void {
    if (this.#pendingAdd.size === 0 && this.#pendingRemove.size === 0) return
    const delta: PbRouteDelta = {
      seq: ++this.local.seq,
      added: [...this.#pendingAdd.values()],
      removed: [...this.#pendingRemove.values()],
    }
    this.#pendingAdd.clear()
    this.#pendingRemove.clear()
    for (const link of this.#links()) {
      if (link === skip) continue
      if (this.hooks.dropOutgoingDelta?.(link.peerId, delta)) continue
      link.send({ body: 'route_delta', route_delta: delta })
    }
  }

  sendSnapshot(link: Link): void {
    // the snapshot carries the pending changes, so the new link must not get them twice
    this.flush(link)
    const seq = this.local.seq
    let chunk: RouteEntry[] = []
    let bytes = 0
    for (const e of this.local.entries()) {
      chunk.push(e)
      bytes += e.filter.length + e.group.length + 16
      if (bytes >= CHUNK_BYTES) {
        link.send({ body: 'route_snapshot', route_snapshot: { routes: chunk, seq, more: true } })
        chunk = []
        bytes = 0
      }
    }
    link.send({ body: 'route_snapshot', route_snapshot: { routes: chunk, seq, more: false } })
  }

  onSnapshot(link: Link, s: PbRouteSnapshot): void {
    const parts = this.#partial.get(link) ?? []
    if (s.more) {
      parts.push(...s.routes)
      this.#partial.set(link, parts)
      return
    }
    this.#partial.delete(link)
    this.#resyncAsked.delete(link.peerId)
    this.table.applySnapshot(link.peerId, parts.length > 0 ? [...parts, ...s.routes] : s.routes, s.seq)
  }

  onDelta(link: Link, d: PbRouteDelta): void {
    if (this.hooks.corruptIncomingDelta?.(link.peerId, d)) {
      this.table.replica(link.peerId).seq = d.seq
      return
    }
    const r = this.table.applyDelta(link.peerId, d.seq, d.added, d.removed)
    if (r === 'gap') this.#askResync(link, 'gap')
  }

  /** Anti-entropy: compares the peer's heartbeat with our replica of its set. */
  onHeartbeat(link: Link, hb: PbHeartbeat): void {
    const asked = this.#resyncAsked.get(link.peerId)
    if (asked !== undefined) {
      if (asked + 1 < this.#missedBeats) {
        this.#resyncAsked.set(link.peerId, asked + 1)
        return
      }
      this.#resyncAsked.delete(link.peerId)
    }
    const replica = this.table.replica(link.peerId)
    if (hb.route_seq > replica.seq) this.#askResync(link, 'gap')
    else if (hb.route_seq === replica.seq && hb.route_digest !== replica.digest) this.#askResync(link, 'digest')
  }

  #askResync(link: Link, reason: 'gap' | 'digest'): void {
    if (this.#resyncAsked.has(link.peerId)) return
    this.#resyncAsked.set(link.peerId, 0)
    this.#metrics.routeResyncs.inc({ peer: link.peerId, reason })
    this.#log.info('route resync requested', { peer: link.peerId, reason })
    link.send({ body: 'route_resync_request', route_resync_request: { reason } })
  }

  linkDown(link: Link): void {
    this.#resyncAsked.delete(link.peerId)
    this.#partial.delete(link)
  }

  #schedule(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(() => {
      this.#flushScheduled = false
      this.flush()
    })
  }
}

// The cluster route table: every peer's route set merged into one trie
// `filter -> workerId -> {normal, groups}` so that a publish is matched once for all peers
// (the NATS sublist / rmqtt "matches grouped by node" shape).
//
// Each peer's replica is a RouteSet fed by the link: a snapshot at link start replaces it,
// deltas must arrive with seq = last + 1 (a gap asks for a resync), and the heartbeat digest
// is compared with the replica's to repair anything else (anti-entropy). Routes of a peer
// that is down stay in the table but are skipped by `match` (the `isUp` predicate), so
// they serve again as soon as the peer is back, before its fresh snapshot even arrives.

import type { GroupKey, RemoteInterest } from '../../worker/fabric.js'
import { FilterTrie } from './filter-trie.js'
import { RouteSet, type RouteEntry } from './route-set.js'

interface WorkerInterest {
  /** reference count of the normal route (0 or the peer's count) */
  normal: number
  /** group name -> member count */
  groups: Map<string, number>
}

type TrieValue = Map<string, WorkerInterest>

/** topics whose match result is kept; past this the cache starts over */
const MATCH_CACHE_MAX = 10_000

export type DeltaResult = 'applied' | 'gap' | 'stale'

export class RouteTable {
  #peers = new Map<string, RouteSet>()
  #trie = new FilterTrie<TrieValue>()
  /** topic -> match result over every peer, up or not; emptied by any route change */
  #cache = new Map<string, RemoteInterest[]>()
  /** the last topic matched and its entry: a client repeats its topic, and a lookup per message adds up */
  #lastTopic: string | null = null
  #lastAll: RemoteInterest[] = []

  /** The replica of `workerId`'s route set (created empty on first use). */
  replica(workerId: string): RouteSet {
    let set = this.#peers.get(workerId)
    if (!set) {
      set = new RouteSet()
      this.#peers.set(workerId, set)
    }
    return set
  }

  /** Route entries held for `workerId` (0 when none). */
  sizeOf(workerId: string): number {
    return this.#peers.get(workerId)?.size ?? 0
  }

  peers(): string[] {
    return [...this.#peers.keys()]
  }

  /** Total route entries held for all peers. */
  get size(): number {
    let n = 0
    for (const s of this.#peers.values()) n += s.size
    return n
  }

  applySnapshot(workerId: string, routes: RouteEntry[], seq: number): void {
    const set = this.replica(workerId)
    for (const e of [...set.entries()]) this.#unindex(workerId, e)
    set.clear()
    for (const r of routes) {
      set.put(r)
      this.#index(workerId, set.get(r.filter, r.group)!)
    }
    set.seq = seq
  }

  applyDelta(workerId: string, seq: number, added: RouteEntry[], removed: RouteEntry[]): DeltaResult {
    const set = this.replica(workerId)
    if (seq <= set.seq) return 'stale'
    if (seq !== set.seq + 1) return 'gap'
    for (const r of removed) {
      const old = set.remove(r.filter, r.group)
      if (old) this.#unindex(workerId, old)
    }
    for (const r of added) {
      const old = set.put(r)
      if (old) this.#unindex(workerId, old)
      this.#index(workerId, set.get(r.filter, r.group)!)
    }
    set.seq = seq
    return 'applied'
  }

  /** Forgets a peer entirely (it left the ring). */
  dropPeer(workerId: string): void {
    const set = this.#peers.get(workerId)
    if (!set) return
    for (const e of set.entries()) this.#unindex(workerId, e)
    this.#peers.delete(workerId)
  }

  /**
   * Peers with interest in `topic`, skipping those for which `isUp` is false. The result is
   * shared with later calls for the same topic: callers must not modify it.
   */
  match(topic: string, isUp: (workerId: string) => boolean): readonly RemoteInterest[] {
    let all = topic === this.#lastTopic ? this.#lastAll : this.#cache.get(topic)
    if (all === undefined) {
      all = this.#matchAll(topic)
      // bounded: a stream of distinct topics must not grow it without end
      if (this.#cache.size >= MATCH_CACHE_MAX) this.#cache.clear()
      this.#cache.set(topic, all)
    }
    this.#lastTopic = topic
    this.#lastAll = all
    for (let i = 0; i < all.length; i++) {
      // a peer is down: filter a copy (rare; the cached list stays whole for when it is back)
      if (!isUp(all[i]!.workerId)) return all.filter((ri) => isUp(ri.workerId))
    }
    return all
  }

  #matchAll(topic: string): RemoteInterest[] {
    const byWorker = new Map<string, RemoteInterest>()
    this.#trie.match(topic, (value) => {
      for (const [workerId, interest] of value) {
        let out = byWorker.get(workerId)
        if (!out) {
          out = { workerId, normal: false, groups: new Map<GroupKey, number>() }
          byWorker.set(workerId, out)
        }
        if (interest.normal > 0) out.normal = true
        for (const [group, count] of interest.groups) out.groups.set(group, count)
      }
    })
    return [...byWorker.values()]
  }

  /** Routes changed: every cached match is stale. */
  #forget(): void {
    this.#cache.clear()
    this.#lastTopic = null
  }

  #index(workerId: string, e: RouteEntry): void {
    this.#forget()
    let value = this.#trie.get(e.filter)
    if (!value) {
      value = new Map()
      this.#trie.set(e.filter, value)
    }
    let interest = value.get(workerId)
    if (!interest) {
      interest = { normal: 0, groups: new Map() }
      value.set(workerId, interest)
    }
    // group keys are `${group}/${filter}`, exactly as after `$share/` (worker/fabric.ts)
    if (e.group === '') interest.normal = e.count
    else interest.groups.set(`${e.group}/${e.filter}`, e.count)
  }

  #unindex(workerId: string, e: RouteEntry): void {
    this.#forget()
    const value = this.#trie.get(e.filter)
    const interest = value?.get(workerId)
    if (!value || !interest) return
    if (e.group === '') interest.normal = 0
    else interest.groups.delete(`${e.group}/${e.filter}`)
    if (interest.normal === 0 && interest.groups.size === 0) value.delete(workerId)
    if (value.size === 0) this.#trie.delete(e.filter)
  }
}

// Placement: which workers hold a client ID under one ring spec.
//
//   hash(clientId) -> point on a 32-bit circle; walk clockwise over the virtual nodes
//   (hashring `range`) collecting distinct workers until N = spec.replicas are found.
//
//         w2#17      w1#903
//     .----*----------*----.        prefs("dev-42") = [w1, w3]   (N = 2)
//     |        ^ hash("dev-42")     owner = first of prefs the caller believes alive
//     *  w3#5                *
//
// Only active workers get virtual nodes: walking past a draining worker is the same as the ring
// without it, so draining moves exactly that worker's IDs and nothing else. Each worker gets
// round(vnodes * weight) points keyed `${id}-${i}`, independent of the other workers, so adding
// a worker never moves points of the existing ones.

import HashRing from 'hashring'
import { ringHash } from './hash.js'
import type { RingSpec, RingWorker } from './spec.js'

const DEFAULT_CACHE_SIZE = 10_000

export class Placement {
  readonly spec: RingSpec
  #ring: HashRing
  #byId = new Map<string, RingWorker>()
  #n: number
  /**
   * Bounded cache of prefs by client ID in two generations: hits in the old generation are
   * promoted; when the young one is full it becomes the old one. At most cacheSize entries,
   * O(1), and recently used IDs survive (an approximate LRU without Map-iteration costs).
   */
  #young = new Map<string, RingWorker[]>()
  #old = new Map<string, RingWorker[]>()
  #cacheSize: number
  /** hashring's continuum as typed arrays: sorted point values and the spec index owning each */
  #points: Uint32Array
  #owners: Uint16Array

  constructor(spec: RingSpec, opts: { cacheSize?: number } = {}) {
    this.spec = spec
    this.#cacheSize = opts.cacheSize ?? DEFAULT_CACHE_SIZE
    const servers: Record<string, { vnodes: number }> = {}
    let active = 0
    for (const w of spec.workers) {
      this.#byId.set(w.id, w)
      if (w.state !== 'active') continue
      servers[w.id] = { vnodes: Math.max(1, Math.round(spec.vnodes * w.weight)) }
      active++
    }
    this.#n = Math.min(spec.replicas, active)
    // 'vnode count' 0: every worker carries its own explicit vnodes (hashring otherwise rescales
    // all workers' point counts by total weight, which would move IDs between unchanged workers);
    // 'replicas' 1: our hash yields one 32-bit point per vnode key. hashring's own cache serves
    // only get(), which we do not use.
    this.#ring = new HashRing(servers, ringHash, { 'vnode count': 0, replicas: 1, 'max cache size': 1 })
    const continuum = (this.#ring as unknown as { ring: { value: number; server: string }[] }).ring
    const index = new Map(spec.workers.map((w, i) => [w.id, i]))
    this.#points = new Uint32Array(continuum.length)
    this.#owners = new Uint16Array(continuum.length)
    for (let i = 0; i < continuum.length; i++) {
      this.#points[i] = continuum[i]!.value
      this.#owners[i] = index.get(continuum[i]!.server)!
    }
  }

  /** The first N distinct active workers clockwise from hash(clientId). Do not mutate the result. */
  prefs(clientId: string): RingWorker[] {
    let cached = this.#young.get(clientId)
    if (cached !== undefined) return cached
    cached = this.#old.get(clientId)
    if (cached !== undefined) {
      this.#remember(clientId, cached)
      return cached
    }
    const ids = this.#ring.range(clientId, this.#n, true)
    const prefs = new Array<RingWorker>(ids.length)
    for (let i = 0; i < ids.length; i++) prefs[i] = this.#byId.get(ids[i]!)!
    this.#remember(clientId, prefs)
    return prefs
  }

  #remember(clientId: string, prefs: RingWorker[]): void {
    if (this.#cacheSize === 0) return
    if (this.#young.size * 2 >= this.#cacheSize) {
      this.#old = this.#young
      this.#young = new Map()
    }
    this.#young.set(clientId, prefs)
  }

  /** The first worker of prefs(clientId) that `isAlive` accepts, or undefined when none is. */
  owner(clientId: string, isAlive: (workerId: string) => boolean): RingWorker | undefined {
    const prefs = this.prefs(clientId)
    for (let i = 0; i < prefs.length; i++) if (isAlive(prefs[i]!.id)) return prefs[i]
    return undefined
  }

  isPref(clientId: string, workerId: string): boolean {
    const prefs = this.prefs(clientId)
    for (let i = 0; i < prefs.length; i++) if (prefs[i]!.id === workerId) return true
    return false
  }

  /**
   * Index into spec.workers of the first pref of a precomputed murmur3(clientId), found by the
   * same search as hashring's `find` over a typed copy of its continuum. Allocation-free, for
   * bulk estimates over many IDs (plan, balance tests); agrees with prefs(id)[0].
   */
  ownerIndexOfHash(hash: number): number {
    return this.#owners[this.#search(hash)]!
  }

  #search(hash: number): number {
    const points = this.#points
    let lo = 0
    let hi = points.length
    // first point >= hash; past the last point wraps to the first
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid]! < hash) lo = mid + 1
      else hi = mid
    }
    return lo === points.length ? 0 : lo
  }

  /**
   * Writes the spec indexes of the prefs of a precomputed hash into `out` (the same clockwise
   * walk as hashring's `range`) and returns how many; allocation-free, for plans.
   */
  prefsIndexOfHash(hash: number, out: Uint16Array): number {
    const points = this.#points
    if (points.length === 0) return 0
    let at = this.#search(hash)
    let count = 0
    for (let step = 0; step < points.length && count < this.#n; step++, at = at + 1 === points.length ? 0 : at + 1) {
      const w = this.#owners[at]!
      let seen = false
      for (let j = 0; j < count; j++) if (out[j] === w) seen = true
      if (!seen) out[count++] = w
    }
    return count
  }

  /** The worker with this ID in the spec (active or draining). */
  worker(workerId: string): RingWorker | undefined {
    return this.#byId.get(workerId)
  }
}

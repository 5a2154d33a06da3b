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
  /** Bounded LRU of prefs by client ID (Map keeps insertion order; re-insert on hit). */
  #cache = new Map<string, RingWorker[]>()
  #cacheSize: number

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
  }

  /** The first N distinct active workers clockwise from hash(clientId). Do not mutate the result. */
  prefs(clientId: string): RingWorker[] {
    const cached = this.#cache.get(clientId)
    if (cached !== undefined) {
      this.#cache.delete(clientId)
      this.#cache.set(clientId, cached)
      return cached
    }
    const ids = this.#ring.range(clientId, this.#n, true)
    const prefs = new Array<RingWorker>(ids.length)
    for (let i = 0; i < ids.length; i++) prefs[i] = this.#byId.get(ids[i]!)!
    if (this.#cacheSize > 0) {
      if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!)
      this.#cache.set(clientId, prefs)
    }
    return prefs
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
   * prefs for a precomputed murmur3(clientId): the same walk as hashring's `range`, over its
   * continuum, without hashing again. For bulk estimates (plan, balance tests) over many IDs.
   */
  prefsOfHash(hash: number): RingWorker[] {
    const ring = (this.#ring as unknown as { ring: { server: string }[] }).ring
    const out: RingWorker[] = []
    if (ring.length === 0) return out
    const start = this.#ring.find(hash)
    for (let i = 0; i < ring.length && out.length < this.#n; i++) {
      const w = this.#byId.get(ring[(start + i) % ring.length]!.server)!
      if (!out.includes(w)) out.push(w)
    }
    return out
  }

  /** The worker with this ID in the spec (active or draining). */
  worker(workerId: string): RingWorker | undefined {
    return this.#byId.get(workerId)
  }
}

// One worker's route set: (filter, group) -> count, with a sequence number and an
// order-independent digest. The owning worker holds the master copy; every peer holds a
// replica built from a snapshot plus ordered deltas and compares digests in heartbeats.
//
// Digest: a SumDigest (digest.ts) over `filter \0 group \0 count`.

import { SumDigest } from './digest.js'

export interface RouteEntry {
  filter: string
  /** shared group name, '' for a normal subscription */
  group: string
  count: number
}

export const routeKey = (filter: string, group: string): string => `${group}\u0000${filter}`

const canonical = (e: RouteEntry): string => `${e.filter}\u0000${e.group}\u0000${e.count}`

export class RouteSet {
  #entries = new Map<string, RouteEntry>()
  #digest = new SumDigest()
  seq = 0

  get size(): number {
    return this.#entries.size
  }

  get digest(): string {
    return this.#digest.toString()
  }

  entries(): IterableIterator<RouteEntry> {
    return this.#entries.values()
  }

  get(filter: string, group: string): RouteEntry | undefined {
    return this.#entries.get(routeKey(filter, group))
  }

  /** Adds or replaces an entry; returns the entry it replaced. */
  put(e: RouteEntry): RouteEntry | undefined {
    const key = routeKey(e.filter, e.group)
    const old = this.#entries.get(key)
    if (old) this.#digest.remove(canonical(old))
    const entry = { filter: e.filter, group: e.group, count: Math.max(1, e.count) }
    this.#entries.set(key, entry)
    this.#digest.add(canonical(entry))
    return old
  }

  remove(filter: string, group: string): RouteEntry | undefined {
    const key = routeKey(filter, group)
    const old = this.#entries.get(key)
    if (!old) return undefined
    this.#entries.delete(key)
    this.#digest.remove(canonical(old))
    return old
  }

  clear(): void {
    this.#entries.clear()
    this.#digest.reset()
  }
}

// One named LMDB database plus an overlay of writes that are issued but not yet committed.
//
// lmdb-js `put`/`remove` are queued and committed in a batch on the next event turn; until the
// promise resolves, `get` and `getRange` still return the old value (verified in
// test/unit/store-lmdb.test.ts, "lmdb-js alone does not show uncommitted puts"). The Store
// contract promises reads that see every write issued before them, so each write is also
// recorded here and dropped once its commit resolved — unless a later write to the same key
// replaced it meanwhile (the token check). Reads consult the overlay first.
//
//   write:  overlay[group][sub] = value|DELETED  ->  db.put/remove  ->  commit  ->  drop entry
//   read:   overlay hit ? overlay value : decoded+upgraded LMDB value
//
// Keys are `group` (single-part tables: sessions, retained, meta) or `[group, sub]`.
// Records handed to put() are kept by reference until committed: callers must not mutate them.

import type { Database } from 'lmdb'
import { RingmqError } from '../errors.js'
import type { Logger } from '../log.js'
import { RANGE_END } from './keys.js'
import { upgradeRecord, type DatabaseName, type UpgradeTable } from './records.js'

export type Sub = string | number
type LmdbKey = string | (string | number | Buffer)[]

interface Pending<T> {
  /** undefined = removed */
  value: T | undefined
  token: number
}

/** `sub` of single-part tables */
const NO_SUB = ''

export class Table<T> {
  readonly #db: Database<unknown, LmdbKey>
  readonly #name: DatabaseName
  readonly #twoPart: boolean
  readonly #log: Logger
  readonly #upgrades: UpgradeTable | undefined
  readonly #pending = new Map<string, Map<Sub, Pending<T>>>()
  #nextToken = 0
  #closed = false

  constructor(db: Database<unknown, LmdbKey>, name: DatabaseName, twoPart: boolean, log: Logger, upgrades?: UpgradeTable) {
    this.#db = db
    this.#name = name
    this.#twoPart = twoPart
    this.#log = log
    this.#upgrades = upgrades
  }

  get(group: string, sub: Sub = NO_SUB): T | undefined {
    const p = this.#pending.get(group)?.get(sub)
    if (p) return p.value
    const raw = this.#db.get(this.#key(group, sub))
    return raw === undefined ? undefined : this.#read(raw)
  }

  put(group: string, sub: Sub, value: T): Promise<void> {
    if (this.#closed) return this.#refused()
    let committed: Promise<boolean>
    try {
      // issued before the overlay is touched: an encoding error (e.g. an unencodable value)
      // throws here synchronously and must leave no trace
      committed = this.#db.put(this.#key(group, sub), value)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#track(group, sub, value, committed)
  }

  remove(group: string, sub: Sub = NO_SUB): Promise<void> {
    if (this.#closed) return this.#refused()
    return this.#track(group, sub, undefined, this.#db.remove(this.#key(group, sub)))
  }

  /** Refuses further writes (lmdb-js would otherwise queue them on a closed environment). */
  close(): void {
    this.#closed = true
  }

  /** Removes every visible record of `group`. Call inside `root.batch()` for atomicity. */
  removeGroup(group: string): Promise<void>[] {
    const subs = [...this.range(group)].map(([sub]) => sub)
    return subs.map((sub) => this.remove(group, sub))
  }

  /** Records of one group in key order, committed merged with pending, up to `limit`. */
  *range(group: string, limit = Infinity): Generator<[Sub, T]> {
    if (limit <= 0) return
    const pend = this.#pending.get(group)
    const shadow = pend ? new Map(pend) : undefined
    const extra: [Sub, T][] = []
    if (shadow) {
      for (const [sub, p] of shadow) if (p.value !== undefined) extra.push([sub, p.value])
      extra.sort((a, b) => compareSub(a[0], b[0]))
    }
    let i = 0
    let n = 0
    for (const { key, value } of this.#db.getRange({ start: [group], end: [group, RANGE_END] })) {
      const sub = (key as (string | number)[])[1]!
      while (i < extra.length && compareSub(extra[i]![0], sub) < 0) {
        yield extra[i++]!
        if (++n >= limit) return
      }
      if (shadow?.has(sub)) continue // the pending write wins (emitted from `extra` if not a removal)
      const rec = this.#read(value)
      if (rec === undefined) continue
      yield [sub, rec]
      if (++n >= limit) return
    }
    while (i < extra.length) {
      yield extra[i++]!
      if (++n >= limit) return
    }
  }

  /** Every record, committed merged with pending, in no particular order. */
  *all(): Generator<T> {
    const shadow = new Map<string, Map<Sub, Pending<T>>>()
    for (const [g, m] of this.#pending) shadow.set(g, new Map(m))
    for (const { key, value } of this.#db.getRange({})) {
      const [group, sub] = this.#twoPart ? (key as [string, Sub]) : [key as string, NO_SUB]
      if (shadow.get(group)?.has(sub)) continue
      const rec = this.#read(value)
      if (rec !== undefined) yield rec
    }
    for (const m of shadow.values()) for (const p of m.values()) if (p.value !== undefined) yield p.value
  }

  /** Number of writes issued and not yet committed (for tests and diagnostics). */
  pendingCount(): number {
    let n = 0
    for (const m of this.#pending.values()) n += m.size
    return n
  }

  #key(group: string, sub: Sub): LmdbKey {
    return this.#twoPart ? [group, sub] : group
  }

  #read(raw: unknown): T | undefined {
    return upgradeRecord<T>(this.#name, raw, this.#log, this.#upgrades)
  }

  #refused(): Promise<never> {
    return Promise.reject(new RingmqError('ERR_STORE_CLOSED', `store closed: write to ${this.#name}`))
  }

  #track(group: string, sub: Sub, value: T | undefined, committed: Promise<boolean>): Promise<void> {
    const token = ++this.#nextToken
    let m = this.#pending.get(group)
    if (!m) this.#pending.set(group, (m = new Map()))
    m.set(sub, { value, token })
    const settle = (): void => {
      const cur = this.#pending.get(group)
      if (cur?.get(sub)?.token !== token) return
      cur.delete(sub)
      if (cur.size === 0) this.#pending.delete(group)
    }
    return committed.then(settle, (err: unknown) => {
      settle()
      throw err
    })
  }
}

function compareSub(a: Sub, b: Sub): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b
  const sa = String(a)
  const sb = String(b)
  return sa < sb ? -1 : sa > sb ? 1 : 0
}

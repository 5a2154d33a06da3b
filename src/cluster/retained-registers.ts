// Last-writer-wins registers for retained messages, one per topic, replicated to every
// worker. A register holds (stamp, message | tombstone); the higher stamp wins, where a
// stamp is (HLC time, writer worker ID) compared in that order, so two workers that set the
// same topic at the same HLC time still agree on one winner.
//
// Tombstones (clears) are kept `tombstoneTtlMs` after their HLC wall time and then dropped.
// Expiry is computed from the stamp, not from when a node learnt it, so all nodes drop a
// tombstone at about the same moment and an expired tombstone is never accepted again.
// Limit (documented in docs/cluster.md): a node that was away longer than the TTL can bring
// back a message that was cleared meanwhile.

import type { BrokerMessage } from '../mqtt/message.js'
import { SumDigest } from './digest.js'
import { compareHlc, type Hlc, type HlcTime } from './hlc.js'

export interface Stamp {
  hlc: HlcTime
  writer: string
}

export interface Register {
  topic: string
  stamp: Stamp
  /** null = tombstone (cleared) */
  msg: BrokerMessage | null
}

export function compareStamp(a: Stamp, b: Stamp): number {
  const c = compareHlc(a.hlc, b.hlc)
  if (c !== 0) return c
  return a.writer < b.writer ? -1 : a.writer > b.writer ? 1 : 0
}

const canonical = (r: { topic: string; stamp: Stamp; msg: unknown }): string =>
  `${r.topic}\u0000${r.stamp.hlc.wall}\u0000${r.stamp.hlc.logical}\u0000${r.stamp.writer}\u0000${r.msg === null ? 't' : 'm'}`

export class RetainedRegisters {
  #registers = new Map<string, Register>()
  #digest = new SumDigest()
  readonly #workerId: string
  readonly #hlc: Hlc
  readonly #ttl: number
  readonly #now: () => number

  constructor(opts: { workerId: string; hlc: Hlc; tombstoneTtlMs: number; now?: () => number }) {
    this.#workerId = opts.workerId
    this.#hlc = opts.hlc
    this.#ttl = opts.tombstoneTtlMs
    this.#now = opts.now ?? Date.now
  }

  get size(): number {
    return this.#registers.size
  }

  get digest(): string {
    return this.#digest.toString()
  }

  get(topic: string): Register | undefined {
    return this.#registers.get(topic)
  }

  all(): IterableIterator<Register> {
    return this.#registers.values()
  }

  /**
   * Seeds a register from the local store at start-up: a message or a tombstone (null) with
   * its persisted stamp. A message without a stamp (written before stamps were stored, or
   * without a cluster) gets the lowest possible one, so any copy a peer holds wins over it.
   * The clock moves past every seeded stamp, so later local writes win over them.
   */
  seed(topic: string, msg: BrokerMessage | null, stamp?: Stamp): void {
    if (this.#registers.has(topic)) return
    if (stamp === undefined && msg === null) return
    if (stamp !== undefined) this.#hlc.receive(stamp.hlc)
    this.#put({ topic, stamp: stamp ?? { hlc: { wall: 0, logical: 0 }, writer: msg!.origin || this.#workerId }, msg })
  }

  /** A local client set (msg) or cleared (null) `topic`: always wins, returns the new register. */
  local(topic: string, msg: BrokerMessage | null): Register {
    const reg = { topic, stamp: { hlc: this.#hlc.now(), writer: this.#workerId }, msg }
    this.#put(reg)
    return reg
  }

  /** A register from a peer; returns true when it won (the caller applies it to the broker). */
  merge(topic: string, stamp: Stamp, msg: BrokerMessage | null): boolean {
    this.#hlc.receive(stamp.hlc)
    if (msg === null && this.#expired(stamp)) return false
    const cur = this.#registers.get(topic)
    if (cur && compareStamp(stamp, cur.stamp) <= 0) return false
    this.#put({ topic, stamp, msg })
    return true
  }

  /** Registers this node holds that are newer than, or absent from, `remote`. */
  newerThan(remote: Map<string, Stamp>): Register[] {
    const out: Register[] = []
    for (const reg of this.#registers.values()) {
      const theirs = remote.get(reg.topic)
      if (!theirs || compareStamp(reg.stamp, theirs) > 0) out.push(reg)
    }
    return out
  }

  /** Drops expired tombstones, calling `onDrop` for each; returns how many. */
  expireTombstones(onDrop?: (topic: string) => void): number {
    let n = 0
    for (const reg of [...this.#registers.values()]) {
      if (reg.msg === null && this.#expired(reg.stamp)) {
        this.#registers.delete(reg.topic)
        this.#digest.remove(canonical(reg))
        onDrop?.(reg.topic)
        n++
      }
    }
    return n
  }

  #expired(stamp: Stamp): boolean {
    return stamp.hlc.wall + this.#ttl <= this.#now()
  }

  #put(reg: Register): void {
    const old = this.#registers.get(reg.topic)
    if (old) this.#digest.remove(canonical(old))
    this.#registers.set(reg.topic, reg)
    this.#digest.add(canonical(reg))
  }
}

// Write-behind for the outgoing QoS 1 inflight records of persistent sessions.
//
// A QoS 1 delivery to a persistent session must be durable before its publisher is
// acknowledged, unless the subscriber has acknowledged it first: then there is nothing left
// to recover. So inflight records are not written at once: they collect here while this
// writer's previous batch commits, and a PUBACK that arrives meanwhile cancels its record
// (no put, no delete). When the previous batch has committed, the records still unacknowledged
// are written as the next batch (with the queue removals of messages drained from the
// queue, so a queued message is never removed before its inflight record is written).
//
//   deliver ─> add() ─> pending ──(previous batch committed)──> putInflight (+ removeQueued)
//                          └─ PUBACK first: cancel() ─> nothing written (or removeQueued only)
//   publisher ack waits for the batch promise: resolved when the batch committed, or at
//   flush time when every record of the batch was cancelled.
//
// Under load most PUBACKs arrive while a commit is in progress, so most QoS 1 deliveries
// to online persistent sessions cost no LMDB write at all; when idle, a record is written
// on the next event-loop turn, as before. One batch is in flight at a time (lmdb-js commits
// one transaction at a time anyway).

import type { Store, StoredInflight } from '../src/store/store.js'
import type { Stats } from './metrics.js'

/** How long records that arrived during a commit wait before the next batch (under load only). */
const HOLD_MS = 1

export interface InflightWrite {
  rec: StoredInflight
  /** removes the message's queue record (drained from the queue); run with the write, or on cancel */
  dequeue: (() => void) | null
  /** 'pending' until flushed; 'written' once issued; 'cancelled' when acknowledged or dropped first */
  state: 'pending' | 'written' | 'cancelled'
}

interface Batch {
  writes: InflightWrite[]
  promise: Promise<void>
  resolve: () => void
  reject: (err: unknown) => void
}

export class InflightWriter {
  #batch: Batch | null = null
  #committing = false
  #scheduled = false

  constructor(readonly store: Store, readonly stats: Stats) {}

  /** Queues a record; returns the promise a publisher's acknowledgement must wait for. */
  add(w: InflightWrite): Promise<void> {
    let b = this.#batch
    if (b === null) {
      let resolve!: () => void
      let reject!: (err: unknown) => void
      const promise = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      // records drained from a queue have no publisher waiting: a failed commit must not be an unhandled rejection
      promise.catch(() => undefined)
      b = { writes: [], promise, resolve, reject }
      this.#batch = b
    }
    b.writes.push(w)
    if (!this.#committing && !this.#scheduled) {
      // idle: write on the next turn, as an unbuffered write would
      this.#scheduled = true
      setImmediate(this.#flush)
    }
    return b.promise
  }

  /** The client acknowledged (or the session dropped) a record: returns true when it was never written. */
  cancel(w: InflightWrite): boolean {
    if (w.state !== 'pending') return false
    w.state = 'cancelled'
    this.stats.inflightRecords.skipped++
    return true
  }

  /** Issues every pending write now (shutdown: before waiting for the store). */
  drainNow(): void {
    this.#flush()
  }

  /** Under load (records arrived during a commit): hold them HOLD_MS so that acks can cancel them. */
  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setTimeout(this.#flush, HOLD_MS)
  }

  #flush = (): void => {
    this.#scheduled = false
    const b = this.#batch
    if (b === null) return
    this.#batch = null
    let last: Promise<void> | null = null
    for (let i = 0; i < b.writes.length; i++) {
      const w = b.writes[i]!
      if (w.state !== 'pending') continue
      w.state = 'written'
      this.stats.inflightRecords.written++
      last = this.store.putInflight(w.rec)
      if (w.dequeue !== null) w.dequeue()
    }
    if (last === null) {
      b.resolve()
      return
    }
    // lmdb-js commits in issue order: the last write committed means the batch did
    this.#committing = true
    last.then(
      () => {
        this.#committing = false
        b.resolve()
        if (this.#batch !== null) this.#schedule()
      },
      (err: unknown) => {
        this.#committing = false
        b.reject(err)
        if (this.#batch !== null) this.#schedule()
      },
    )
  }
}

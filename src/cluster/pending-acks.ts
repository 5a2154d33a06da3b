// The QoS 1/2 messages sent to one peer and not acknowledged yet: the callback to settle for
// each message id. A peer's ids are one increasing sequence (forwarder.ts) and its acks come
// mostly in order, so the pending ids are a window over an array, not a Map: a Map insert,
// lookup and delete per message cost more than the rest of a forward's bookkeeping.
//
//   slots: [ done | null ... ]      slots[head] is id `first`; acked slots become null and
//          ^head                    the window's start moves past them

import type { Settle } from '../../worker/commit.js'

/** how many acked slots may pile up at the front before the array is compacted */
const COMPACT_AT = 4096

export class PendingAcks {
  #slots: Array<Settle | null> = []
  #head = 0
  /** the id of slots[head] */
  #first = 0
  #size = 0

  get size(): number {
    return this.#size
  }

  /** Adds `id`, greater than every id added before. */
  add(id: number, done: Settle): void {
    if (this.#size === 0) {
      this.#slots.length = 0
      this.#head = 0
      this.#first = id
    }
    const at = this.#head + (id - this.#first)
    if (at < this.#slots.length) throw new RangeError(`pending id ${id} not above the last one`)
    while (this.#slots.length < at) this.#slots.push(null)
    this.#slots.push(done)
    this.#size++
  }

  /** Removes `id` and returns its callback, or undefined when it is not pending. */
  take(id: number): Settle | undefined {
    const at = this.#head + (id - this.#first)
    if (id < this.#first || at >= this.#slots.length) return undefined
    const done = this.#slots[at]
    if (done === null || done === undefined) return undefined
    this.#slots[at] = null
    this.#size--
    if (at === this.#head) this.#advance()
    return done
  }

  /** Removes and returns every pending callback, oldest first. */
  drain(): Settle[] {
    const out: Settle[] = []
    for (let i = this.#head; i < this.#slots.length; i++) {
      const done = this.#slots[i]
      if (done) out.push(done)
    }
    this.#slots = []
    this.#head = 0
    this.#size = 0
    return out
  }

  #advance(): void {
    const slots = this.#slots
    let h = this.#head
    while (h < slots.length && slots[h] === null) h++
    this.#first += h - this.#head
    this.#head = h
    if (h >= COMPACT_AT && h * 2 >= slots.length) {
      this.#slots = slots.slice(h)
      this.#head = 0
    }
  }
}

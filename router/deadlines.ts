// Deadlines that all share one delay (the CONNECT deadline, the worker connect timeout), kept
// in one FIFO and checked by one interval timer instead of a setTimeout per connection: entries
// are added in time order, so expired ones are always at the head. An entry fires up to one
// tick late (tick = delay / 4, at most 500 ms).
//
//   add(x) -> seq          cancel(seq)             every tick: fire head entries that are due
//   [ a  b  null  d  e ]   (slot nulled, so a closed connection is not kept alive until its
//     ^head                 deadline)

import { performance } from 'node:perf_hooks'

export class DeadlineQueue<T> {
  readonly delayMs: number
  #tickMs: number
  #onExpire: (item: T) => void
  #items: (T | null)[] = []
  #due: number[] = []
  #head = 0
  /** sequence number of #items[0] */
  #base = 0
  #timer: NodeJS.Timeout | null = null

  constructor(delayMs: number, onExpire: (item: T) => void) {
    this.delayMs = delayMs
    this.#tickMs = Math.max(10, Math.min(500, Math.floor(delayMs / 4)))
    this.#onExpire = onExpire
  }

  /** Schedules `item` to expire `delayMs` from now; returns its sequence number for cancel(). */
  add(item: T): number {
    this.#items.push(item)
    this.#due.push(performance.now() + this.delayMs)
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), this.#tickMs)
      this.#timer.unref()
    }
    return this.#base + this.#items.length - 1
  }

  cancel(seq: number): void {
    const i = seq - this.#base
    if (i >= this.#head && i < this.#items.length) this.#items[i] = null
  }

  get pending(): number {
    return this.#items.length - this.#head
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#base += this.#items.length
    this.#items = []
    this.#due = []
    this.#head = 0
  }

  #tick(): void {
    const now = performance.now()
    while (this.#head < this.#items.length && this.#due[this.#head]! <= now) {
      const item = this.#items[this.#head]
      this.#items[this.#head] = null
      this.#head++
      if (item !== null) this.#onExpire(item)
    }
    if (this.#head === this.#items.length) {
      this.stop()
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items.splice(0, this.#head)
      this.#due.splice(0, this.#head)
      this.#base += this.#head
      this.#head = 0
    }
  }
}

// Open-loop send schedule: message k (0-based) is due at start + k / rate. The generator asks
// how many are due now and sends them, so a stall in the generator or the broker does not
// lower the offered rate (no coordinated omission in the send pattern); how far behind it
// fell is reported as `maxLagMs`.

export class RateSchedule {
  readonly #start: number
  readonly #perMs: number
  #issued = 0
  #maxLag = 0

  /** @param ratePerSec messages per second, > 0; @param startMs clock value of message 0 */
  constructor(ratePerSec: number, startMs: number) {
    if (!(ratePerSec > 0)) throw new RangeError(`rate must be > 0, got ${ratePerSec}`)
    this.#perMs = ratePerSec / 1000
    this.#start = startMs
  }

  get issued(): number {
    return this.#issued
  }

  get maxLagMs(): number {
    return this.#maxLag
  }

  /** Number of messages due by `nowMs` and not yet issued; marks them issued. */
  take(nowMs: number): number {
    const due = this.dueBy(nowMs)
    const n = due - this.#issued
    if (n <= 0) return 0
    const lag = nowMs - this.dueAt(this.#issued)
    if (lag > this.#maxLag) this.#maxLag = lag
    this.#issued = due
    return n
  }

  /** Messages due by `nowMs` since the start (message k is due at start + k/rate). */
  dueBy(nowMs: number): number {
    if (nowMs < this.#start) return 0
    return Math.floor((nowMs - this.#start) * this.#perMs) + 1
  }

  /** Clock value at which message `k` is due. */
  dueAt(k: number): number {
    return this.#start + k / this.#perMs
  }

  /** Milliseconds from `nowMs` until the next message not yet issued is due (0 if overdue). */
  msUntilNext(nowMs: number): number {
    return Math.max(0, this.dueAt(this.#issued) - nowMs)
  }
}

/** Splits `n` messages round-robin over `parties`, continuing from `cursor`; returns the new cursor. */
export function spreadRoundRobin(n: number, parties: number, cursor: number, out: Int32Array): number {
  out.fill(0)
  const base = Math.floor(n / parties)
  if (base > 0) for (let i = 0; i < parties; i++) out[i] = base
  let rest = n - base * parties
  let c = cursor
  while (rest-- > 0) {
    out[c]!++
    c = (c + 1) % parties
  }
  return c
}

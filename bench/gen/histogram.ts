// Latency histogram with bounded relative error (HdrHistogram's layout, reduced to what the
// bench needs). Values are recorded in units of 0.1 us; below 2048 units (204.8 us) every
// unit has its own bucket, above that each power of two is split in 1024 buckets, so any
// recorded value is reported within 0.1% of itself. Memory is fixed (about 88 KB) however
// many samples are recorded, which keeps long open-loop runs cheap.

const SUB_BITS = 10
const SUB = 1 << SUB_BITS // 1024
const UNIT_PER_US = 10
const MAX_UNITS = 2 ** 31 - 1 // about 214 s
const BUCKETS = SUB * (31 - SUB_BITS + 1)

export interface LatencySummary {
  count: number
  minUs: number
  meanUs: number
  p50Us: number
  p99Us: number
  p999Us: number
  maxUs: number
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS)
  #count = 0
  #sum = 0
  #min = Infinity
  #max = -Infinity

  get count(): number {
    return this.#count
  }

  /** Records one latency in microseconds (negative values are clamped to 0). */
  record(us: number): void {
    const v = us <= 0 ? 0 : us
    this.#counts[indexOf(toUnits(v))]!++
    this.#count++
    this.#sum += v
    if (v < this.#min) this.#min = v
    if (v > this.#max) this.#max = v
  }

  merge(other: Histogram): void {
    const oc = other.#counts
    for (let i = 0; i < BUCKETS; i++) this.#counts[i]! += oc[i]!
    this.#count += other.#count
    this.#sum += other.#sum
    if (other.#min < this.#min) this.#min = other.#min
    if (other.#max > this.#max) this.#max = other.#max
  }

  /**
   * The smallest recorded value v such that at least p% of samples are <= v (nearest rank),
   * reported as the middle of its bucket and clamped to [min, max]. NaN when empty.
   */
  percentile(p: number): number {
    if (this.#count === 0) return NaN
    // the epsilon keeps 99.9% of 1000 at rank 999 despite 0.999 * 1000 = 999.0000000000001
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count - 1e-9))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!
      if (seen >= rank) return Math.min(this.#max, Math.max(this.#min, bucketMiddle(i) / UNIT_PER_US))
    }
    return this.#max
  }

  summary(): LatencySummary {
    const empty = this.#count === 0
    return {
      count: this.#count,
      minUs: empty ? NaN : this.#min,
      meanUs: empty ? NaN : this.#sum / this.#count,
      p50Us: this.percentile(50),
      p99Us: this.percentile(99),
      p999Us: this.percentile(99.9),
      maxUs: empty ? NaN : this.#max,
    }
  }
}

function toUnits(us: number): number {
  const u = Math.round(us * UNIT_PER_US)
  return u > MAX_UNITS ? MAX_UNITS : u
}

export function indexOf(units: number): number {
  if (units < 2 * SUB) return units
  const msb = 31 - Math.clz32(units)
  const shift = msb - SUB_BITS // >= 1
  return SUB * (shift + 1) + ((units >>> shift) - SUB)
}

function bucketMiddle(i: number): number {
  if (i < 2 * SUB) return i
  const shift = Math.floor(i / SUB) - 1
  const sub = (i % SUB) + SUB
  const lo = sub * 2 ** shift
  const width = 2 ** shift
  return lo + (width - 1) / 2
}

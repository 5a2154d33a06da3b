import { describe, expect, it } from 'vitest'
import { Histogram, indexOf } from '../../bench/gen/histogram.js'

describe('bench latency histogram', () => {
  it('reports nearest-rank percentiles within 0.1% for a uniform 1..10000 us spread', () => {
    const h = new Histogram()
    for (let v = 1; v <= 10_000; v++) h.record(v)
    const s = h.summary()
    expect(s.count).toBe(10_000)
    expect(s.minUs).toBe(1)
    expect(s.maxUs).toBe(10_000)
    expect(s.meanUs).toBeCloseTo(5000.5, 6)
    expect(Math.abs(s.p50Us - 5000) / 5000).toBeLessThan(0.001)
    expect(Math.abs(s.p99Us - 9900) / 9900).toBeLessThan(0.001)
    expect(Math.abs(s.p999Us - 9990) / 9990).toBeLessThan(0.001)
  })

  it('is exact to 0.1 us below 204.8 us', () => {
    const h = new Histogram()
    for (const v of [12.3, 45.6, 58.1, 99.9, 150.2]) h.record(v)
    expect(h.percentile(20)).toBeCloseTo(12.3, 6)
    expect(h.percentile(60)).toBeCloseTo(58.1, 6)
    expect(h.percentile(100)).toBeCloseTo(150.2, 6)
  })

  it('keeps a tail of one outlier in p99.9 only when it is above the rank', () => {
    const h = new Histogram()
    for (let i = 0; i < 999; i++) h.record(50)
    h.record(40_000)
    expect(h.percentile(99)).toBe(50)
    expect(h.percentile(99.9)).toBe(50) // rank 999 of 1000 is still 50
    h.record(40_000)
    expect(Math.abs(h.percentile(99.9) - 40_000) / 40_000).toBeLessThan(0.001)
  })

  it('is empty-safe and merges', () => {
    const a = new Histogram()
    expect(Number.isNaN(a.percentile(50))).toBe(true)
    expect(Number.isNaN(a.summary().p99Us)).toBe(true)
    const b = new Histogram()
    for (let i = 0; i < 100; i++) a.record(10)
    for (let i = 0; i < 100; i++) b.record(1000)
    a.merge(b)
    expect(a.count).toBe(200)
    expect(a.percentile(50)).toBe(10)
    expect(Math.abs(a.percentile(51) - 1000) / 1000).toBeLessThan(0.001)
    expect(a.summary().maxUs).toBe(1000)
  })

  it('clamps negative samples to zero and maps bucket indices monotonically', () => {
    const h = new Histogram()
    h.record(-5)
    expect(h.percentile(50)).toBe(0)
    let prev = -1
    for (let u = 0; u < 1 << 22; u += 997) {
      const i = indexOf(u)
      expect(i).toBeGreaterThanOrEqual(prev)
      prev = i
    }
  })
})

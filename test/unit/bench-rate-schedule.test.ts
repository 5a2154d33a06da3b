import { describe, expect, it } from 'vitest'
import { RateSchedule, spreadRoundRobin } from '../../bench/gen/rate-schedule.js'

describe('bench open-loop rate schedule', () => {
  it('issues message k at start + k/rate, and each message once', () => {
    const s = new RateSchedule(2000, 100) // one message every 0.5 ms from t=100
    expect(s.take(99)).toBe(0)
    expect(s.take(100)).toBe(1) // message 0 is due at the start
    expect(s.take(100.4)).toBe(0)
    expect(s.take(100.5)).toBe(1)
    expect(s.take(110)).toBe(19) // messages 2..20
    expect(s.issued).toBe(21)
    expect(s.dueAt(21)).toBeCloseTo(110.5, 9)
    expect(s.msUntilNext(110)).toBeCloseTo(0.5, 9)
  })

  it('keeps the offered rate after a stall and reports the lag', () => {
    const s = new RateSchedule(1000, 0)
    expect(s.take(0)).toBe(1)
    expect(s.take(50)).toBe(50) // a 50 ms stall: everything due is issued at once
    expect(s.maxLagMs).toBeCloseTo(49, 9) // message 1 was due at 1 ms
    expect(s.issued).toBe(51)
    expect(s.msUntilNext(50)).toBeCloseTo(1, 9)
    // after a second of ticking every millisecond, exactly rate * seconds messages went out
    for (let t = 51; t <= 1000; t++) s.take(t)
    expect(s.issued).toBe(1001)
  })

  it('rejects a non-positive rate', () => {
    expect(() => new RateSchedule(0, 0)).toThrow(RangeError)
    expect(() => new RateSchedule(Number.NaN, 0)).toThrow(RangeError)
  })

  it('spreads messages round-robin over publishers, continuing where it stopped', () => {
    const out = new Int32Array(4)
    let c = spreadRoundRobin(3, 4, 0, out)
    expect([...out]).toEqual([1, 1, 1, 0])
    c = spreadRoundRobin(3, 4, c, out)
    expect([...out]).toEqual([1, 1, 0, 1])
    c = spreadRoundRobin(10, 4, c, out)
    expect([...out]).toEqual([2, 2, 3, 3])
    expect(c).toBe(0)
    // over many calls every publisher gets the same share
    const total = new Int32Array(4)
    for (let i = 0; i < 1000; i++) {
      c = spreadRoundRobin(7, 4, c, out)
      for (let j = 0; j < 4; j++) total[j]! += out[j]!
    }
    expect(Math.max(...total) - Math.min(...total)).toBeLessThanOrEqual(1)
  })
})

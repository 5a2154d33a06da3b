import { describe, expect, it } from 'vitest'
import { PendingAcks } from '../../src/cluster/pending-acks.js'
import type { Settle } from '../../worker/commit.js'

const settle = (name: string, log: string[]): Settle => ({ settle: (err) => log.push(err ? `${name}:${err.message}` : name) })

describe('PendingAcks (QoS 1/2 forwards awaiting their ack, by message id)', () => {
  it('takes each id once, in or out of order, and ignores ids it does not hold', () => {
    const log: string[] = []
    const p = new PendingAcks()
    for (const id of [5, 6, 7, 9]) p.add(id, settle(`m${id}`, log))
    expect(p.size).toBe(4)
    expect(p.take(8)).toBeUndefined()
    expect(p.take(4)).toBeUndefined()
    expect(p.take(10)).toBeUndefined()
    p.take(7)!.settle(null)
    p.take(5)!.settle(null)
    expect(p.take(5)).toBeUndefined()
    expect(p.size).toBe(2)
    p.take(9)!.settle(null)
    p.take(6)!.settle(null)
    expect(p.size).toBe(0)
    expect(log).toEqual(['m7', 'm5', 'm9', 'm6'])
    // empty again: a later sequence starts a new window
    p.add(100, settle('m100', log))
    expect(p.take(100)).toBeDefined()
  })

  it('refuses an id that is not above the last one', () => {
    const p = new PendingAcks()
    p.add(3, settle('a', []))
    expect(() => p.add(3, settle('b', []))).toThrow(RangeError)
    expect(() => p.add(2, settle('b', []))).toThrow(RangeError)
  })

  it('drains what is still pending, oldest first, across a window that moved and was compacted', () => {
    const log: string[] = []
    const p = new PendingAcks()
    for (let id = 1; id <= 20_000; id++) p.add(id, settle(`m${id}`, log))
    for (let id = 1; id <= 19_990; id++) if (id !== 12_345) p.take(id)!.settle(null)
    expect(p.size).toBe(11)
    expect(p.take(19_990)).toBeUndefined()
    const rest = p.drain()
    expect(p.size).toBe(0)
    for (const d of rest) d.settle(new Error('lost'))
    expect(log.slice(-11)).toEqual(['m12345:lost', ...Array.from({ length: 10 }, (_, i) => `m${19_991 + i}:lost`)])
    expect(p.take(19_995)).toBeUndefined()
  })
})

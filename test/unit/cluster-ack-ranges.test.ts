import { describe, expect, it } from 'vitest'
import { AckRangesError, encodeAckRanges, forEachAckRange } from '../../src/cluster/ack-ranges.js'

const decode = (buf: Buffer): number[] => {
  const out: number[] = []
  forEachAckRange(buf, (id) => out.push(id))
  return out
}

describe('PublishAck ok_ranges', () => {
  it('round-trips ids in the order given, runs of consecutive ids as one range', () => {
    const ids = [5, 6, 7, 8, 20, 2 ** 40 + 1, 2 ** 40 + 2, 3]
    const buf = encodeAckRanges(ids)
    expect(buf.length).toBe(4 * 10)
    expect(decode(buf)).toEqual(ids)
  })

  it('a thousand in-order acks are one range of ten bytes; none is zero bytes', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => 77 + i)
    expect(encodeAckRanges(ids).length).toBe(10)
    expect(decode(encodeAckRanges(ids))).toEqual(ids)
    expect(encodeAckRanges([]).length).toBe(0)
  })

  it('refuses a truncated buffer', () => {
    expect(() => decode(encodeAckRanges([1, 9]).subarray(0, 15))).toThrow(AckRangesError)
  })
})

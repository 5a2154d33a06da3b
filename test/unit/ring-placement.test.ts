import { describe, expect, it } from 'vitest'
import { Placement } from '../../src/ring/placement.js'
import { assignClientId } from '../../src/ring/client-id.js'
import { murmur3 } from '../../src/ring/hash.js'
import { parseRingSpec, type RingSpec } from '../../src/ring/spec.js'

function ring(n: number, replicas: number, over: (i: number) => object = () => ({})): RingSpec {
  return parseRingSpec({
    epoch: 1,
    replicas,
    workers: Array.from({ length: n }, (_, i) => ({ id: `w${i + 1}`, mqtt: `127.0.0.1:${2000 + i}`, peer: `127.0.0.1:${3000 + i}`, ...over(i) })),
  })
}

describe('murmur3', () => {
  it.each([
    ['', 0],
    ['hello', 0x248bfa47],
    ['The quick brown fox jumps over the lazy dog', 0x2e4ff723],
  ])('hashes %j to the reference value', (key, expected) => {
    expect(murmur3(key)).toBe(expected)
  })
})

it('hashes non-ASCII and long keys by their UTF-8 bytes, stably', () => {
  expect(murmur3('héllo')).toBe(murmur3('héllo'))
  expect(murmur3('héllo')).not.toBe(murmur3('hello'))
  const long = 'x'.repeat(5000)
  expect(murmur3(long + 'é')).not.toBe(murmur3(long + 'e'))
})

describe('placement', () => {
  it('gives N distinct workers, the same on every node (fresh instances agree)', () => {
    const a = new Placement(ring(5, 3))
    const b = new Placement(ring(5, 3), { cacheSize: 0 })
    for (let i = 0; i < 2000; i++) {
      const id = `device-${i}`
      const p = a.prefs(id).map((w) => w.id)
      expect(new Set(p).size).toBe(3)
      expect(b.prefs(id).map((w) => w.id)).toEqual(p)
      expect(a.prefs(id).map((w) => w.id)).toEqual(p) // cached answer is the same
      expect(a.isPref(id, p[2]!)).toBe(true)
    }
  })

  it('owner is the first pref believed alive, undefined when none is', () => {
    const p = new Placement(ring(4, 2))
    const prefs = p.prefs('sensor-7')
    expect(p.owner('sensor-7', () => true)).toBe(prefs[0])
    expect(p.owner('sensor-7', (id) => id !== prefs[0]!.id)).toBe(prefs[1])
    expect(p.owner('sensor-7', () => false)).toBeUndefined()
  })

  it('skips draining workers; draining one moves only its own IDs', () => {
    const before = new Placement(ring(4, 2))
    const after = new Placement(ring(4, 2, (i) => (i === 1 ? { state: 'draining' } : {})))
    let movedFromOthers = 0
    for (let i = 0; i < 20000; i++) {
      const id = `c${i}`
      expect(after.isPref(id, 'w2')).toBe(false)
      if (before.prefs(id)[0]!.id !== 'w2' && after.prefs(id)[0]!.id !== before.prefs(id)[0]!.id) movedFromOthers++
    }
    expect(movedFromOthers).toBe(0)
  })

  it('honours weights', () => {
    const p = new Placement(ring(3, 1, (i) => ({ weight: i === 0 ? 2 : 1 })))
    const counts: Record<string, number> = {}
    for (let i = 0; i < 40000; i++) {
      const o = p.prefs(`k${i}`)[0]!.id
      counts[o] = (counts[o] ?? 0) + 1
    }
    expect(counts.w1! / 40000).toBeGreaterThan(0.47)
    expect(counts.w1! / 40000).toBeLessThan(0.53)
  })

  it('the typed fast paths agree with hashring range', () => {
    const p = new Placement(ring(7, 3), { cacheSize: 0 })
    const out = new Uint16Array(3)
    for (let i = 0; i < 20000; i++) {
      const id = `agree-${i}`
      const h = murmur3(id)
      const expected = p.prefs(id).map((w) => w.id)
      expect(p.spec.workers[p.ownerIndexOfHash(h)]!.id).toBe(expected[0])
      const n = p.prefsIndexOfHash(h, out)
      expect(Array.from(out.subarray(0, n), (x) => p.spec.workers[x]!.id)).toEqual(expected)
    }
  })

  it('keeps its prefs cache bounded', () => {
    const p = new Placement(ring(3, 2), { cacheSize: 100 })
    for (let i = 0; i < 1000; i++) p.prefs(`x${i}`)
    // still correct after eviction
    expect(p.prefs('x1').map((w) => w.id)).toEqual(new Placement(ring(3, 2)).prefs('x1').map((w) => w.id))
  })
})

describe('assignClientId', () => {
  it('returns random IDs of at most 23 characters that the worker owns', () => {
    const p = new Placement(ring(5, 2))
    const seen = new Set<string>()
    for (const w of ['w1', 'w3', 'w5']) {
      for (let i = 0; i < 50; i++) {
        const id = assignClientId(p, w)
        expect(id).toMatch(/^ringmq-[0-9a-z]+$/)
        expect(id.length).toBeLessThanOrEqual(23)
        expect(p.prefs(id)[0]!.id).toBe(w)
        seen.add(id)
      }
    }
    expect(seen.size).toBe(150)
  })

  it('refuses a worker that owns nothing', () => {
    const p = new Placement(ring(3, 1, (i) => (i === 2 ? { state: 'draining' } : {})))
    expect(() => assignClientId(p, 'w3')).toThrow(/not active/)
    expect(() => assignClientId(p, 'w9')).toThrow(/not active/)
  })
})

// Balance and movement over 1,000,000 client IDs with the default vnodes (docs/ring.md).
import { describe, expect, it } from 'vitest'
import { murmur3 } from '../../src/ring/hash.js'
import { Placement } from '../../src/ring/placement.js'
import { plan } from '../../src/ring/plan.js'
import { parseRingSpec, type RingSpec } from '../../src/ring/spec.js'

const IDS = 1_000_000
const hashes = new Uint32Array(IDS)
for (let i = 0; i < IDS; i++) hashes[i] = murmur3(`client-${i.toString(36)}-${(i * 2654435761) >>> 0}`)

function ring(ids: string[], replicas = 1): RingSpec {
  return parseRingSpec({ epoch: 1, replicas, workers: ids.map((id, i) => ({ id, mqtt: `127.0.0.1:${2000 + i}`, peer: `127.0.0.1:${3000 + i}` })) })
}
const names = (n: number) => Array.from({ length: n }, (_, i) => `w${i + 1}`)

/** owner (as worker ID index into `ids`) of every client ID */
function owners(p: Placement): Uint8Array {
  const out = new Uint8Array(IDS)
  for (let i = 0; i < IDS; i++) out[i] = p.ownerIndexOfHash(hashes[i]!)
  return out
}

describe('ring balance over 1,000,000 client IDs', () => {
  it('3..16 equal workers: busiest <= mean + 5%; adding the (N+1)th moves within 10% of 1/(N+1)', () => {
    let prev = owners(new Placement(ring(names(3))))
    for (let n = 3; n <= 16; n++) {
      const counts = new Array<number>(n).fill(0)
      for (let i = 0; i < IDS; i++) counts[prev[i]!]!++
      const busiest = Math.max(...counts) / (IDS / n)
      expect(busiest, `busiest of ${n} workers`).toBeLessThanOrEqual(1.05)

      const next = owners(new Placement(ring(names(n + 1))))
      let moved = 0
      for (let i = 0; i < IDS; i++) {
        if (next[i] !== prev[i]) {
          moved++
          // consistent hashing: every moved ID goes to the new worker (index n)
          if (next[i] !== n) throw new Error(`ID ${i} moved between existing workers`)
        }
      }
      const ideal = 1 / (n + 1)
      expect(Math.abs(moved / IDS - ideal) / ideal, `moved adding worker ${n + 1}`).toBeLessThanOrEqual(0.1)
      prev = next
    }
  })

  it('removing a worker moves only that worker’s IDs', () => {
    const all = names(8)
    const before = owners(new Placement(ring(all)))
    const without = all.filter((w) => w !== 'w5')
    const after = owners(new Placement(ring(without)))
    let moved = 0
    for (let i = 0; i < IDS; i++) {
      const a = all[before[i]!]
      const b = without[after[i]!]
      if (a !== b) {
        moved++
        expect(a).toBe('w5')
      } else if (a === 'w5') throw new Error('w5 still owns an ID')
    }
    expect(moved).toBeGreaterThan(0)
  })

  it('plan reports per-worker moves that match the full count to 0.5%', () => {
    const from = ring(names(4), 2)
    const to = ring(names(5), 2)
    const p = plan(from, to)
    const a = owners(new Placement(from))
    const b = owners(new Placement(to))
    const exact = new Map<string, number>()
    let moved = 0
    for (let i = 0; i < IDS; i++) {
      if (a[i] !== b[i]) {
        moved++
        const k = `w${a[i]! + 1}->w${b[i]! + 1}`
        exact.set(k, (exact.get(k) ?? 0) + 1)
      }
    }
    expect(Math.abs(p.ownerMoved - moved / IDS)).toBeLessThan(0.005)
    expect(p.moves.every((m) => m.to === 'w5')).toBe(true)
    for (const m of p.moves) expect(Math.abs(m.share - (exact.get(`${m.from}->${m.to}`) ?? 0) / IDS)).toBeLessThan(0.005)
    expect(p.replicaSetChanged).toBeGreaterThan(p.ownerMoved)
    expect(p.shares.find((s) => s.worker === 'w5')).toMatchObject({ before: 0 })
  })
})

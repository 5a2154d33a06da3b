import { describe, expect, it } from 'vitest'
import { DeadlineQueue } from '../../router/deadlines.js'

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
}

describe('DeadlineQueue', () => {
  it('fires entries in order, skips cancelled ones, and stops its timer when empty', async () => {
    const fired: string[] = []
    const q = new DeadlineQueue<string>(40, (x) => fired.push(x))
    q.add('a')
    const b = q.add('b')
    q.add('c')
    q.cancel(b)
    expect(q.pending).toBe(3)
    await until(() => q.pending === 0)
    expect(fired).toEqual(['a', 'c'])
    // a cancelled sequence number from before a stop does not touch later entries
    const d = q.add('d')
    q.cancel(b)
    await until(() => q.pending === 0)
    expect(fired).toEqual(['a', 'c', 'd'])
    q.cancel(d)
  })

  it('an entry added by an expiry handler waits for its own deadline', async () => {
    const fired: number[] = []
    const q: DeadlineQueue<number> = new DeadlineQueue<number>(40, (n) => {
      fired.push(n)
      if (n < 3) q.add(n + 1)
    })
    q.add(1)
    await until(() => fired.length === 3 && q.pending === 0)
    expect(fired).toEqual([1, 2, 3])
  })

  it('fires only the uncancelled ones of many entries', async () => {
    const fired = new Set<number>()
    const q = new DeadlineQueue<number>(40, (n) => fired.add(n))
    const seqs: number[] = []
    for (let i = 0; i < 3000; i++) seqs.push(q.add(i))
    for (let i = 0; i < 3000; i += 2) q.cancel(seqs[i]!)
    await until(() => q.pending === 0)
    expect(fired.size).toBe(1500)
    expect([...fired].every((n) => n % 2 === 1)).toBe(true)
  })
})

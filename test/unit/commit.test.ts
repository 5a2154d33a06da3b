import { describe, expect, it } from 'vitest'
import { Commit, type Settle } from '../../worker/commit.js'

function target(): Settle & { calls: Array<Error | null> } {
  const calls: Array<Error | null> = []
  return { calls, settle: (err) => void calls.push(err) }
}

describe('Commit', () => {
  it('settles its target within seal() when nothing is pending', () => {
    const t = target()
    new Commit().seal(t)
    expect(t.calls).toEqual([null])
  })

  it('waits for every hold and promise, then settles once', async () => {
    const t = target()
    const c = new Commit()
    const a = c.hold()
    const b = c.hold()
    let release!: () => void
    c.add(new Promise<void>((resolve) => (release = resolve)))
    c.seal(t)
    a.settle(null)
    b.settle(null)
    expect(t.calls).toEqual([])
    release()
    await Promise.resolve()
    await Promise.resolve()
    expect(t.calls).toEqual([null])
  })

  it('passes on the first failure, including one settled before seal()', () => {
    const t = target()
    const c = new Commit()
    const first = new Error('peer down')
    c.hold().settle(first)
    c.hold().settle(new Error('second'))
    c.seal(t)
    expect(t.calls).toEqual([first])
  })

  it('sealed() rejects with a failed store write', async () => {
    const c = new Commit()
    c.add(Promise.reject(new Error('disk full')))
    await expect(c.sealed()).rejects.toThrow('disk full')
  })
})

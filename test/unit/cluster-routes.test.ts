import { describe, expect, it } from 'vitest'
import { FilterTrie } from '../../src/cluster/filter-trie.js'
import { RouteSet } from '../../src/cluster/route-set.js'
import { RouteTable } from '../../src/cluster/route-table.js'

const up = () => true
const view = (t: RouteTable, topic: string, isUp: (id: string) => boolean = up) =>
  t
    .match(topic, isUp)
    .map((i) => ({ workerId: i.workerId, normal: i.normal, groups: Object.fromEntries(i.groups) }))
    .sort((a, b) => a.workerId.localeCompare(b.workerId))

describe('FilterTrie', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true], // [MQTT-4.7.1-2] the parent level
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+/+', 'a/b', true],
    ['+', '/a', false],
    ['+/a', '/a', true], // empty level
    ['#', '$SYS/x', false], // [MQTT-4.7.2-1]
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
  ]
  it.each(cases)('filter %s vs topic %s -> %s', (filter, topic, expected) => {
    const t = new FilterTrie<string>()
    t.set(filter, filter)
    const seen: string[] = []
    t.match(topic, (v) => seen.push(v))
    expect(seen.length === 1).toBe(expected)
  })

  it('prunes deleted branches and counts entries', () => {
    const t = new FilterTrie<number>()
    t.set('a/b/c', 1)
    t.set('a/b', 2)
    expect(t.size).toBe(2)
    t.delete('a/b/c')
    t.delete('a/b/c')
    expect(t.size).toBe(1)
    expect(t.get('a/b')).toBe(2)
    t.delete('a/b')
    expect(t.size).toBe(0)
    expect(t.get('a')).toBeUndefined()
  })
})

describe('RouteSet digest', () => {
  it('is independent of insertion order and changes with counts', () => {
    const a = new RouteSet()
    const b = new RouteSet()
    const entries = [
      { filter: 'x/#', group: '', count: 1 },
      { filter: 'y/+', group: 'g', count: 2 },
      { filter: 'z', group: '', count: 5 },
    ]
    entries.forEach((e) => a.put(e))
    ;[...entries].reverse().forEach((e) => b.put(e))
    expect(a.digest).toBe(b.digest)
    b.put({ filter: 'y/+', group: 'g', count: 3 })
    expect(a.digest).not.toBe(b.digest)
    b.put({ filter: 'y/+', group: 'g', count: 2 })
    expect(a.digest).toBe(b.digest)
    b.remove('z', '')
    b.put({ filter: 'z', group: '', count: 5 })
    expect(a.digest).toBe(b.digest)
    const empty = new RouteSet()
    a.clear()
    expect(a.digest).toBe(empty.digest)
  })
})

describe('RouteTable', () => {
  it('merges every peer set into one trie, grouped by worker', () => {
    const t = new RouteTable()
    t.applySnapshot('w2', [{ filter: 'a/+', group: '', count: 1 }, { filter: 'a/b', group: 'g', count: 2 }], 4)
    t.applySnapshot('w3', [{ filter: 'a/#', group: '', count: 7 }, { filter: 'a/b', group: 'g', count: 1 }, { filter: 'a/+', group: 'h', count: 1 }], 9)
    expect(view(t, 'a/b')).toEqual([
      { workerId: 'w2', normal: true, groups: { 'g/a/b': 2 } },
      { workerId: 'w3', normal: true, groups: { 'g/a/b': 1, 'h/a/+': 1 } },
    ])
    expect(view(t, 'a/b', (id) => id !== 'w3')).toEqual([{ workerId: 'w2', normal: true, groups: { 'g/a/b': 2 } }])
    expect(t.size).toBe(5)
    expect(t.sizeOf('w3')).toBe(3)
  })

  it('applies deltas in order, reports gaps and ignores stale ones', () => {
    const t = new RouteTable()
    t.applySnapshot('w2', [], 10)
    expect(t.applyDelta('w2', 11, [{ filter: 'x', group: '', count: 1 }], [])).toBe('applied')
    expect(t.applyDelta('w2', 11, [{ filter: 'y', group: '', count: 1 }], [])).toBe('stale')
    expect(t.applyDelta('w2', 13, [{ filter: 'z', group: '', count: 1 }], [])).toBe('gap')
    expect(view(t, 'x')).toHaveLength(1)
    expect(view(t, 'y')).toHaveLength(0)
    expect(view(t, 'z')).toHaveLength(0)
    // the same topic right before and after a change: the last-topic memo must not answer
    expect(view(t, 'x')).toHaveLength(1)
    expect(t.applyDelta('w2', 12, [], [{ filter: 'x', group: '', count: 1 }])).toBe('applied')
    expect(view(t, 'x')).toHaveLength(0)
  })

  it('a snapshot replaces the replica, and its digest equals the sender set digest', () => {
    const sender = new RouteSet()
    sender.put({ filter: 'a', group: '', count: 1 })
    sender.put({ filter: 'b', group: 'g', count: 3 })
    const t = new RouteTable()
    t.applySnapshot('w2', [{ filter: 'old', group: '', count: 1 }], 1)
    t.applySnapshot('w2', [...sender.entries()], 2)
    expect(view(t, 'old')).toEqual([])
    expect(t.replica('w2').digest).toBe(sender.digest)
    t.dropPeer('w2')
    expect(view(t, 'a')).toEqual([])
    expect(t.size).toBe(0)
  })
})

import { describe, expect, it } from 'vitest'
import { Trie } from '../../src/mqtt/trie.js'

function matchSorted(t: Trie<string>, topic: string): string[] {
  return [...t.match(topic)].sort()
}

describe('Trie', () => {
  const cases: Array<[filter: string, topic: string, matches: boolean]> = [
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/+', 'a/', true],
    ['+/+', '/x', true],
    ['a/#', 'a', true], // "#" also matches the parent level [MQTT-4.7.1-1]
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+', 'a', true],
    ['+', 'a/b', false],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['#', '$SYS/x', false], // [MQTT-4.7.2-1]
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['$SYS/+', '$SYS/x', true],
    ['a//b', 'a//b', true],
    ['/', '/', true],
  ]
  for (const [filter, topic, want] of cases) {
    it(`${filter} ${want ? 'matches' : 'does not match'} ${topic}`, () => {
      const t = new Trie<string>()
      t.add(filter, 'v')
      expect(t.match(topic).length).toBe(want ? 1 : 0)
    })
  }

  it('returns every matching value, including several under one filter', () => {
    const t = new Trie<string>()
    t.add('a/b', 'x')
    t.add('a/b', 'y')
    t.add('a/+', 'z')
    t.add('#', 'w')
    t.add('c/#', 'no')
    expect(matchSorted(t, 'a/b')).toEqual(['w', 'x', 'y', 'z'])
  })

  it('invalidates the match cache on add and remove', () => {
    const t = new Trie<string>()
    t.add('a/+', 'x')
    expect(matchSorted(t, 'a/b')).toEqual(['x'])
    const g = t.generation
    t.add('a/b', 'y')
    expect(t.generation).toBeGreaterThan(g)
    expect(matchSorted(t, 'a/b')).toEqual(['x', 'y'])
    expect(t.remove('a/+', 'x')).toBe(true)
    expect(matchSorted(t, 'a/b')).toEqual(['y'])
    expect(t.remove('a/+', 'x')).toBe(false)
  })

  it('prunes empty nodes and keeps size', () => {
    const t = new Trie<string>()
    t.add('a/b/c', 'x')
    t.add('a/#', 'y')
    expect(t.size).toBe(2)
    t.remove('a/b/c', 'x')
    t.remove('a/#', 'y')
    expect(t.size).toBe(0)
    expect([...t.entries()]).toEqual([])
    expect(t.match('a/b/c')).toHaveLength(0)
  })

  it('keeps the cache bounded', () => {
    const t = new Trie<string>(4)
    t.add('#', 'x')
    for (let i = 0; i < 100; i++) expect(t.match(`t/${i}`)).toHaveLength(1)
  })

  it('lists entries with their filters', () => {
    const t = new Trie<string>()
    t.add('a/+/c', '1')
    t.add('a/#', '2')
    expect([...t.entries()].sort()).toEqual([['a/#', '2'], ['a/+/c', '1']])
  })
})

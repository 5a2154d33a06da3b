import { describe, expect, it } from 'vitest'
import { compareHlc, Hlc } from '../../src/cluster/hlc.js'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import { compareStamp, RetainedRegisters } from '../../src/cluster/retained-registers.js'

const m = (payload: string): BrokerMessage => ({ topic: 't', payload: Buffer.from(payload), qos: 0, retain: true, origin: 'w1', publisherId: 'p' })

describe('Hlc', () => {
  it('is strictly monotonic when the wall clock stalls or goes back', () => {
    let now = 1000
    const c = new Hlc({ now: () => now })
    const a = c.now()
    const b = c.now()
    now = 500
    const d = c.now()
    expect(compareHlc(b, a)).toBeGreaterThan(0)
    expect(compareHlc(d, b)).toBeGreaterThan(0)
    expect(d.wall).toBe(1000)
    now = 2000
    expect(c.now()).toEqual({ wall: 2000, logical: 0 })
  })

  it('moves past timestamps it receives', () => {
    let now = 1000
    const c = new Hlc({ now: () => now })
    const r = c.receive({ wall: 5000, logical: 7 })
    expect(r).toEqual({ wall: 5000, logical: 8 })
    expect(compareHlc(c.now(), { wall: 5000, logical: 8 })).toBeGreaterThan(0)
    now = 6000
    expect(c.receive({ wall: 10, logical: 0 })).toEqual({ wall: 6000, logical: 0 })
  })

  it('never goes backwards across a restart, even with the wall clock stepped back', () => {
    let saved: number | undefined
    const store = { load: () => saved, save: (hw: number) => void (saved = hw) }
    let now = 10_000
    const c1 = new Hlc({ now: () => now, store, reserveMs: 1000 })
    let last = c1.now()
    for (let i = 0; i < 50; i++) {
      now += 37
      last = c1.now()
    }
    expect(saved).toBeGreaterThan(last.wall)
    now = 5_000 // the machine's clock stepped back, then the process restarted
    const c2 = new Hlc({ now: () => now, store, reserveMs: 1000 })
    expect(compareHlc(c2.now(), last)).toBeGreaterThan(0)
  })

  it('writes the high-water once per reserve window, not per tick', () => {
    let saves = 0
    let now = 0
    const c = new Hlc({ now: () => now, store: { load: () => undefined, save: () => void saves++ }, reserveMs: 1000 })
    for (now = 1; now < 3000; now += 10) c.now()
    expect(saves).toBeLessThanOrEqual(4)
    expect(saves).toBeGreaterThanOrEqual(2)
  })
})

describe('RetainedRegisters (LWW)', () => {
  const make = (id: string, now = () => 1_000_000, ttl = 60_000) => new RetainedRegisters({ workerId: id, hlc: new Hlc({ now }), tombstoneTtlMs: ttl, now })

  it('keeps the higher stamp, with the writer ID breaking HLC ties', () => {
    const r = make('w2')
    expect(r.merge('t', { hlc: { wall: 10, logical: 0 }, writer: 'w1' }, m('a'))).toBe(true)
    expect(r.merge('t', { hlc: { wall: 9, logical: 5 }, writer: 'w9' }, m('old'))).toBe(false)
    expect(r.merge('t', { hlc: { wall: 10, logical: 0 }, writer: 'w3' }, m('tie-w3'))).toBe(true)
    expect(r.merge('t', { hlc: { wall: 10, logical: 0 }, writer: 'w2' }, m('tie-w2'))).toBe(false)
    expect(r.merge('t', { hlc: { wall: 10, logical: 0 }, writer: 'w3' }, m('same'))).toBe(false) // idempotent
    expect(r.get('t')!.msg!.payload.toString()).toBe('tie-w3')
    expect(compareStamp({ hlc: { wall: 1, logical: 0 }, writer: 'a' }, { hlc: { wall: 1, logical: 0 }, writer: 'b' })).toBeLessThan(0)
  })

  it('converges two replicas whatever order they receive the same writes in', () => {
    const writes = [
      { stamp: { hlc: { wall: 5, logical: 0 }, writer: 'w1' }, msg: m('a') },
      { stamp: { hlc: { wall: 5, logical: 1 }, writer: 'w2' }, msg: null },
      { stamp: { hlc: { wall: 4, logical: 9 }, writer: 'w3' }, msg: m('c') },
    ]
    const now = () => 10
    const a = make('wa', now)
    const b = make('wb', now)
    writes.forEach((w) => a.merge('t', w.stamp, w.msg))
    ;[...writes].reverse().forEach((w) => b.merge('t', w.stamp, w.msg))
    expect(a.get('t')).toEqual(b.get('t'))
    expect(a.get('t')!.msg).toBeNull()
    expect(a.digest).toBe(b.digest)
  })

  it('a local write beats everything it has seen', () => {
    const r = make('w1')
    r.merge('t', { hlc: { wall: 9_999_999, logical: 3 }, writer: 'w9' }, m('future'))
    const reg = r.local('t', m('mine'))
    expect(compareStamp(reg.stamp, { hlc: { wall: 9_999_999, logical: 3 }, writer: 'w9' })).toBeGreaterThan(0)
  })

  it('expires tombstones by their stamp and refuses expired ones', () => {
    let now = 1_000_000
    const r = make('w1', () => now, 1000)
    r.local('gone', null)
    r.local('kept', m('x'))
    expect(r.size).toBe(2)
    now += 999
    expect(r.expireTombstones()).toBe(0)
    now += 2
    expect(r.expireTombstones()).toBe(1)
    expect(r.get('gone')).toBeUndefined()
    expect(r.get('kept')).toBeDefined()
    expect(r.merge('gone', { hlc: { wall: now - 5000, logical: 0 }, writer: 'w2' }, null)).toBe(false)
    expect(r.size).toBe(1)
  })

  it('lists what a peer lacks or holds older (catch-up)', () => {
    const r = make('w1')
    r.merge('a', { hlc: { wall: 10, logical: 0 }, writer: 'w1' }, m('a'))
    r.merge('b', { hlc: { wall: 10, logical: 0 }, writer: 'w1' }, m('b'))
    r.merge('c', { hlc: { wall: 10, logical: 0 }, writer: 'w1' }, m('c'))
    const theirs = new Map([
      ['a', { hlc: { wall: 10, logical: 0 }, writer: 'w1' }],
      ['b', { hlc: { wall: 11, logical: 0 }, writer: 'w1' }],
    ])
    expect(r.newerThan(theirs).map((x) => x.topic)).toEqual(['c'])
    theirs.set('a', { hlc: { wall: 9, logical: 0 }, writer: 'w1' })
    expect(r.newerThan(theirs).map((x) => x.topic).sort()).toEqual(['a', 'c'])
  })

  it('seeded registers (no persisted stamp) lose to any replicated write', () => {
    const r = make('w1')
    r.seed('t', m('restored'))
    expect(r.merge('t', { hlc: { wall: 1, logical: 0 }, writer: 'w0' }, m('peer'))).toBe(true)
  })
})

// Contract suite for the Store interface (src/store/store.ts). Every implementation runs it:
//
//   describeStore('lmdb', { open: () => openLmdbStore({ path: tmpDir() }), reopen: ... })
//
// It checks what the broker relies on: reads see writes issued before them (committed or not),
// per-client ranges are isolated (also for client IDs that are prefixes of each other), queue
// order and seq, deleteSession removes everything of one client and nothing else, Buffers
// round-trip as Buffers, and — for durable stores (`reopen` given) — everything is back after
// a restart.

import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import {
  SCHEMA_VERSION,
  type Store,
  type StoredInflight,
  type StoredQueued,
  type StoredRetained,
  type StoredSession,
  type StoredSubscription,
} from '../../src/store/store.js'

export interface StoreHarness {
  /** a fresh, empty store */
  open(): Store | Promise<Store>
  /** closes `store` and opens the same data again; omit for non-durable stores */
  reopen?(store: Store): Promise<Store>
}

export function message(over: Partial<BrokerMessage> = {}): BrokerMessage {
  return { topic: 't/1', payload: Buffer.from('hello'), qos: 1, retain: false, origin: 'w1', publisherId: 'pub', ...over }
}

export function session(clientId: string, over: Partial<StoredSession> = {}): StoredSession {
  return { v: SCHEMA_VERSION, clientId, protocolVersion: 5, expiryInterval: 3600, disconnectedAt: null, will: null, willAt: null, ...over }
}

export function subscription(clientId: string, filter: string, over: Partial<StoredSubscription> = {}): StoredSubscription {
  return { v: SCHEMA_VERSION, clientId, filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, ...over }
}

export function inflight(clientId: string, packetId: number, over: Partial<StoredInflight> = {}): StoredInflight {
  return { v: SCHEMA_VERSION, clientId, packetId, state: 'publish', qos: 1, message: message(), retain: false, ...over }
}

export function retained(topic: string, over: Partial<StoredRetained> = {}): StoredRetained {
  return { v: SCHEMA_VERSION, topic, message: message({ topic, retain: true }), ...over }
}

const queued = (payload: string): Omit<StoredQueued, 'v' | 'clientId' | 'seq'> => ({
  message: message({ payload: Buffer.from(payload) }),
  qos: 1,
  retain: false,
})

/** every byte value, so that no encoding can get away with text */
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

/** A message using every field that must pass through storage unchanged. */
export function richMessage(): BrokerMessage {
  return message({
    payload: BINARY,
    qos: 2,
    retain: true,
    expiresAt: 1_900_000_000_000,
    properties: {
      payloadFormatIndicator: false,
      contentType: 'application/octet-stream',
      responseTopic: 'reply/ü/1',
      correlationData: Buffer.from([0, 1, 2, 0xfe, 0xff]),
      userProperties: { a: '1', multi: ['x', 'y'] },
    },
  })
}

function expectRichMessage(m: BrokerMessage): void {
  expect(Buffer.isBuffer(m.payload)).toBe(true)
  expect(m.payload.equals(BINARY)).toBe(true)
  const cd = m.properties?.correlationData
  expect(Buffer.isBuffer(cd)).toBe(true)
  expect(cd!.equals(Buffer.from([0, 1, 2, 0xfe, 0xff]))).toBe(true)
  expect(m.expiresAt).toBe(1_900_000_000_000)
  expect(m.properties?.userProperties).toEqual({ a: '1', multi: ['x', 'y'] })
  expect(m.properties?.responseTopic).toBe('reply/ü/1')
  expect(m.properties?.contentType).toBe('application/octet-stream')
  expect(m.properties?.payloadFormatIndicator).toBe(false)
}

/** Client IDs that are prefixes of each other, or would be after naive string concatenation. */
const NEIGHBOURS = ['a', 'ab', 'a/b', 'a b', 'aa', ' a', 'A', 'a\u0003', '\u001fa', 'a\u0000b']

export function describeStore(name: string, harness: StoreHarness): void {
  describe(`Store contract: ${name}`, () => {
    const open: Store[] = []
    const start = async (): Promise<Store> => {
      const s = await harness.open()
      open.push(s)
      return s
    }
    const restart = harness.reopen
      ? async (s: Store): Promise<Store> => {
          open.splice(open.indexOf(s), 1)
          const r = await harness.reopen!(s)
          open.push(r)
          return r
        }
      : undefined
    /** runs `check` now (writes possibly pending), after commit, and after a restart */
    const everywhere = async (s: Store, check: (s: Store) => void): Promise<Store> => {
      check(s)
      await s.flushed()
      check(s)
      if (!restart) return s
      const r = await restart(s)
      check(r)
      return r
    }

    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()))
    })

    describe('sessions', () => {
      it('reads back a session before and after commit, and after restart', async () => {
        const s = await start()
        expect(s.getSession('c1')).toBeUndefined()
        void s.putSession(session('c1', { expiryInterval: 0xffffffff, disconnectedAt: 123 }))
        await everywhere(s, (s) => {
          expect(s.getSession('c1')).toEqual(session('c1', { expiryInterval: 0xffffffff, disconnectedAt: 123 }))
        })
      })

      it('replaces a session; the last write issued wins', async () => {
        const s = await start()
        void s.putSession(session('c1', { protocolVersion: 4 }))
        void s.putSession(session('c1', { protocolVersion: 5, expiryInterval: 7 }))
        await everywhere(s, (s) => {
          expect(s.getSession('c1')).toMatchObject({ protocolVersion: 5, expiryInterval: 7 })
        })
      })

      it('keeps the will with its Buffers', async () => {
        const s = await start()
        const will = { message: richMessage(), delayInterval: 30 }
        await s.putSession(session('c1', { will, willAt: 1_700_000_000_000 }))
        await everywhere(s, (s) => {
          const got = s.getSession('c1')!
          expect(got.will!.delayInterval).toBe(30)
          expect(got.willAt).toBe(1_700_000_000_000)
          expectRichMessage(got.will!.message)
        })
      })

      it('lists every session, committed and pending, once each', async () => {
        const s = await start()
        await Promise.all(NEIGHBOURS.map((id) => s.putSession(session(id))))
        void s.putSession(session('late'))
        void s.putSession(session('a', { protocolVersion: 3 })) // pending replacement of a committed one
        await everywhere(s, (s) => {
          const all = [...s.listSessions()]
          expect(all.map((x) => x.clientId).sort()).toEqual([...NEIGHBOURS, 'late'].sort())
          expect(all.find((x) => x.clientId === 'a')!.protocolVersion).toBe(3)
        })
      })
    })

    describe('subscriptions', () => {
      it('stores, replaces and deletes subscriptions per client', async () => {
        const s = await start()
        void s.putSubscription(subscription('c1', 'a/+'))
        void s.putSubscription(subscription('c1', 'b/#', { qos: 2, subscriptionId: 7, noLocal: true, retainAsPublished: true, retainHandling: 2 }))
        void s.putSubscription(subscription('c1', '$share/g/c'))
        void s.putSubscription(subscription('c1', 'a/+', { qos: 0 })) // replaces
        void s.deleteSubscription('c1', '$share/g/c')
        void s.deleteSubscription('c1', 'never/subscribed')
        await everywhere(s, (s) => {
          const subs = s.getSubscriptions('c1')
          expect(subs.map((x) => x.filter).sort()).toEqual(['a/+', 'b/#'])
          expect(subs.find((x) => x.filter === 'a/+')!.qos).toBe(0)
          expect(subs.find((x) => x.filter === 'b/#')).toEqual(
            subscription('c1', 'b/#', { qos: 2, subscriptionId: 7, noLocal: true, retainAsPublished: true, retainHandling: 2 }),
          )
        })
      })

      it('isolates clients whose IDs are prefixes of each other', async () => {
        const s = await start()
        for (const id of NEIGHBOURS) void s.putSubscription(subscription(id, `f/${id}`))
        await everywhere(s, (s) => {
          for (const id of NEIGHBOURS) expect(s.getSubscriptions(id).map((x) => x.filter)).toEqual([`f/${id}`])
          expect(s.getSubscriptions('')).toEqual([])
          expect(s.getSubscriptions('b')).toEqual([])
        })
      })

      it('lists every subscription of every client', async () => {
        const s = await start()
        await s.putSubscription(subscription('a', 'x'))
        void s.putSubscription(subscription('ab', 'y'))
        void s.putSubscription(subscription('a', 'z'))
        await everywhere(s, (s) => {
          expect([...s.listSubscriptions()].map((x) => `${x.clientId}:${x.filter}`).sort()).toEqual(['a:x', 'a:z', 'ab:y'])
        })
      })

      it('handles filters and client IDs longer than an LMDB key', async () => {
        const s = await start()
        const longId = 'c'.repeat(3000)
        const longFilter = 'l/'.repeat(2000) + '#'
        void s.putSubscription(subscription(longId, longFilter))
        void s.putSubscription(subscription(longId, 'short'))
        void s.putSubscription(subscription('c', 'other'))
        const r = await everywhere(s, (s) => {
          expect(s.getSubscriptions(longId).map((x) => x.filter).sort()).toEqual([longFilter, 'short'].sort())
          expect(s.getSubscriptions('c').map((x) => x.filter)).toEqual(['other'])
        })
        await r.deleteSubscription(longId, longFilter)
        expect(r.getSubscriptions(longId).map((x) => x.filter)).toEqual(['short'])
      })
    })

    describe('queue', () => {
      it('assigns increasing seqs and returns items oldest first', async () => {
        const s = await start()
        const recs = await Promise.all(['m1', 'm2', 'm3', 'm4'].map((p) => s.enqueue('c1', queued(p))))
        expect(recs.map((r) => r.v)).toEqual([SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION])
        expect(recs.map((r) => r.clientId)).toEqual(['c1', 'c1', 'c1', 'c1'])
        const seqs = recs.map((r) => r.seq)
        expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)
        expect(new Set(seqs).size).toBe(4)
        await everywhere(s, (s) => {
          expect(s.peekQueue('c1', 10).map((q) => q.message.payload.toString())).toEqual(['m1', 'm2', 'm3', 'm4'])
          expect(s.peekQueue('c1', 2).map((q) => q.seq)).toEqual(seqs.slice(0, 2))
          expect(s.peekQueue('c1', 0)).toEqual([])
          expect(s.queueLength('c1')).toBe(4)
        })
      })

      it('shows enqueued and removed items before they commit', async () => {
        const s = await start()
        const first = await s.enqueue('c1', queued('m1'))
        const second = s.enqueue('c1', queued('m2'))
        void s.enqueue('c1', queued('m3'))
        expect(s.queueLength('c1')).toBe(3)
        void s.removeQueued('c1', first.seq)
        expect(s.queueLength('c1')).toBe(2)
        expect(s.peekQueue('c1', 1).map((q) => q.message.payload.toString())).toEqual(['m2'])
        void s.removeQueued('c1', (await second).seq)
        await everywhere(s, (s) => {
          expect(s.peekQueue('c1', 10).map((q) => q.message.payload.toString())).toEqual(['m3'])
          expect(s.queueLength('c1')).toBe(1)
        })
      })

      it('keeps queueLength right when removing unknown seqs or the same seq twice', async () => {
        const s = await start()
        const a = await s.enqueue('c1', queued('m1'))
        await s.enqueue('c1', queued('m2'))
        expect(s.queueLength('c1')).toBe(2)
        void s.removeQueued('c1', a.seq)
        void s.removeQueued('c1', a.seq)
        void s.removeQueued('c1', 999_999)
        expect(s.queueLength('c1')).toBe(1)
        await s.flushed()
        expect(s.queueLength('c1')).toBe(1)
        expect(s.queueLength('nobody')).toBe(0)
      })

      it('never reuses a seq, also across a restart', async () => {
        let s = await start()
        const a = await s.enqueue('c1', queued('m1'))
        const b = await s.enqueue('c1', queued('m2'))
        await s.removeQueued('c1', b.seq)
        const c = await s.enqueue('c1', queued('m3'))
        expect(c.seq).toBeGreaterThan(b.seq)
        if (restart) {
          s = await restart(s)
          const d = await s.enqueue('c1', queued('m4'))
          expect(d.seq).toBeGreaterThan(c.seq)
          expect(s.peekQueue('c1', 10).map((q) => q.seq)).toEqual([a.seq, c.seq, d.seq])
        }
      })

      it('orders by seq numerically beyond one digit', async () => {
        const s = await start()
        const n = 120
        await Promise.all(Array.from({ length: n }, (_, i) => s.enqueue('c1', queued(`m${i}`))))
        await everywhere(s, (s) => {
          const items = s.peekQueue('c1', n)
          expect(items.map((q) => q.message.payload.toString())).toEqual(Array.from({ length: n }, (_, i) => `m${i}`))
        })
      })

      it('isolates queues of clients whose IDs are prefixes of each other', async () => {
        const s = await start()
        for (const id of NEIGHBOURS) {
          void s.enqueue(id, queued(`${id}-1`))
          void s.enqueue(id, queued(`${id}-2`))
        }
        await everywhere(s, (s) => {
          for (const id of NEIGHBOURS) {
            expect(s.peekQueue(id, 10).map((q) => q.message.payload.toString())).toEqual([`${id}-1`, `${id}-2`])
            expect(s.queueLength(id)).toBe(2)
          }
        })
      })

      it('keeps queued fields and Buffers', async () => {
        const s = await start()
        await s.enqueue('c1', { message: richMessage(), qos: 2, retain: true, subscriptionIds: [1, 268_435_455] })
        await everywhere(s, (s) => {
          const [q] = s.peekQueue('c1', 1)
          expect(q!.qos).toBe(2)
          expect(q!.retain).toBe(true)
          expect(q!.subscriptionIds).toEqual([1, 268_435_455])
          expectRichMessage(q!.message)
        })
      })

      it('round-trips an empty payload as an empty Buffer', async () => {
        const s = await start()
        await s.enqueue('c1', { message: message({ payload: Buffer.alloc(0) }), qos: 1, retain: false })
        await everywhere(s, (s) => {
          const p = s.peekQueue('c1', 1)[0]!.message.payload
          expect(Buffer.isBuffer(p)).toBe(true)
          expect(p.length).toBe(0)
        })
      })
    })

    describe('inflight', () => {
      it('stores, updates and deletes inflight records ordered by packet ID', async () => {
        const s = await start()
        void s.putInflight(inflight('c1', 300))
        void s.putInflight(inflight('c1', 2, { qos: 2 }))
        void s.putInflight(inflight('c1', 65535))
        void s.putInflight(inflight('c1', 2, { qos: 2, state: 'pubrel' }))
        void s.deleteInflight('c1', 65535)
        void s.putInflight(inflight('ab', 1))
        await everywhere(s, (s) => {
          expect(s.listInflight('c1').map((r) => [r.packetId, r.state])).toEqual([[2, 'pubrel'], [300, 'publish']])
          expect(s.listInflight('a')).toEqual([])
          expect(s.listInflight('ab').map((r) => r.packetId)).toEqual([1])
        })
      })

      it('keeps inflight messages, subscription IDs and Buffers', async () => {
        const s = await start()
        await s.putInflight(inflight('c1', 9, { message: richMessage(), qos: 2, subscriptionIds: [3], retain: true }))
        await everywhere(s, (s) => {
          const [r] = s.listInflight('c1')
          expect(r!.subscriptionIds).toEqual([3])
          expect(r!.retain).toBe(true)
          expectRichMessage(r!.message)
        })
      })
    })

    describe('incoming QoS 2', () => {
      it('adds, answers and deletes packet IDs per client', async () => {
        const s = await start()
        void s.addIncomingQos2('a', 1)
        void s.addIncomingQos2('a', 2)
        void s.addIncomingQos2('ab', 3)
        expect(s.hasIncomingQos2('a', 1)).toBe(true)
        void s.deleteIncomingQos2('a', 2)
        await everywhere(s, (s) => {
          expect(s.hasIncomingQos2('a', 1)).toBe(true)
          expect(s.hasIncomingQos2('a', 2)).toBe(false)
          expect(s.hasIncomingQos2('a', 3)).toBe(false)
          expect(s.hasIncomingQos2('ab', 3)).toBe(true)
          expect(s.hasIncomingQos2('ab', 1)).toBe(false)
        })
      })
    })

    describe('retained', () => {
      it('stores, replaces, lists and deletes retained messages', async () => {
        const s = await start()
        const longTopic = 'x/'.repeat(1500) + 'end'
        void s.putRetained(retained('a/b'))
        void s.putRetained(retained('a/b/c', { hlc: { wall: 5, logical: 1, node: 'w2' } }))
        void s.putRetained(retained(longTopic))
        void s.putRetained(retained('ü/€/𝄞'))
        void s.putRetained(retained('gone'))
        void s.deleteRetained('gone')
        void s.putRetained(retained('a/b', { message: message({ topic: 'a/b', payload: Buffer.from('new'), retain: true }) }))
        await everywhere(s, (s) => {
          expect(s.getRetained('a/b')!.message.payload.toString()).toBe('new')
          expect(s.getRetained('a/b/c')!.hlc).toEqual({ wall: 5, logical: 1, node: 'w2' })
          expect(s.getRetained(longTopic)!.topic).toBe(longTopic)
          expect(s.getRetained('gone')).toBeUndefined()
          expect([...s.listRetained()].map((r) => r.topic).sort()).toEqual(['a/b', 'a/b/c', longTopic, 'ü/€/𝄞'].sort())
        })
      })

      it('keeps retained Buffers and properties', async () => {
        const s = await start()
        await s.putRetained({ v: SCHEMA_VERSION, topic: 'r', message: { ...richMessage(), topic: 'r' } })
        await everywhere(s, (s) => expectRichMessage(s.getRetained('r')!.message))
      })
    })

    describe('meta', () => {
      it('stores arbitrary values and replaces them', async () => {
        const s = await start()
        expect(s.getMeta('ring')).toBeUndefined()
        void s.putMeta('ring', { epoch: 1, workers: [{ id: 'w1' }] })
        void s.putMeta('ring', { epoch: 2, workers: [{ id: 'w1' }, { id: 'w2' }] })
        void s.putMeta('clock', 42)
        await everywhere(s, (s) => {
          expect(s.getMeta('ring')).toEqual({ epoch: 2, workers: [{ id: 'w1' }, { id: 'w2' }] })
          expect(s.getMeta<number>('clock')).toBe(42)
        })
      })
    })

    describe('deleteSession', () => {
      const fill = (s: Store, id: string): void => {
        void s.putSession(session(id))
        void s.putSubscription(subscription(id, 'f/1'))
        void s.putSubscription(subscription(id, 'f/2'))
        void s.enqueue(id, queued(`${id}-q`))
        void s.putInflight(inflight(id, 1))
        void s.addIncomingQos2(id, 5)
      }

      it('removes everything keyed by the client and nothing of its neighbours', async () => {
        const s = await start()
        for (const id of NEIGHBOURS) fill(s, id)
        void s.putRetained(retained('r'))
        void s.putMeta('m', 1)
        await s.flushed()
        void s.enqueue('a', queued('pending')) // not yet committed when the delete is issued
        void s.deleteSession('a')
        await everywhere(s, (s) => {
          expect(s.getSession('a')).toBeUndefined()
          expect(s.getSubscriptions('a')).toEqual([])
          expect(s.peekQueue('a', 10)).toEqual([])
          expect(s.queueLength('a')).toBe(0)
          expect(s.listInflight('a')).toEqual([])
          expect(s.hasIncomingQos2('a', 5)).toBe(false)
          expect([...s.listSessions()].some((x) => x.clientId === 'a')).toBe(false)
          expect([...s.listSubscriptions()].some((x) => x.clientId === 'a')).toBe(false)
          for (const id of NEIGHBOURS.filter((x) => x !== 'a')) {
            expect(s.getSession(id)).toBeDefined()
            expect(s.getSubscriptions(id)).toHaveLength(2)
            expect(s.queueLength(id)).toBe(1)
            expect(s.listInflight(id)).toHaveLength(1)
            expect(s.hasIncomingQos2(id, 5)).toBe(true)
          }
          expect(s.getRetained('r')).toBeDefined()
          expect(s.getMeta('m')).toBe(1)
        })
      })

      it('applies writes in the order issued: delete then recreate in the same turn', async () => {
        const s = await start()
        fill(s, 'c1')
        await s.flushed()
        void s.deleteSession('c1')
        void s.putSession(session('c1', { protocolVersion: 4 }))
        void s.putSubscription(subscription('c1', 'new'))
        void s.enqueue('c1', queued('new'))
        await everywhere(s, (s) => {
          expect(s.getSession('c1')!.protocolVersion).toBe(4)
          expect(s.getSubscriptions('c1').map((x) => x.filter)).toEqual(['new'])
          expect(s.peekQueue('c1', 10).map((q) => q.message.payload.toString())).toEqual(['new'])
          expect(s.queueLength('c1')).toBe(1)
          expect(s.listInflight('c1')).toEqual([])
          expect(s.hasIncomingQos2('c1', 5)).toBe(false)
        })
      })

      it('removes a session that was never committed, and resolves for unknown clients', async () => {
        const s = await start()
        fill(s, 'c1')
        const done = s.deleteSession('c1')
        await expect(s.deleteSession('nobody')).resolves.toBeUndefined()
        await done
        await everywhere(s, (s) => {
          expect(s.getSession('c1')).toBeUndefined()
          expect(s.queueLength('c1')).toBe(0)
          expect(s.getSubscriptions('c1')).toEqual([])
        })
      })
    })

    describe('lifecycle', () => {
      it('resolves flushed() once every write is durable and reports a size', async () => {
        const s = await start()
        const before = s.sizeBytes()
        expect(before).toBeGreaterThan(0)
        // random bytes, so that a compressing store cannot shrink them
        for (let i = 0; i < 500; i++) void s.putRetained(retained(`t/${i}`, { message: message({ payload: randomBytes(1000) }) }))
        await s.flushed()
        expect(s.sizeBytes()).toBeGreaterThan(before + 400_000)
        expect([...s.listRetained()]).toHaveLength(500)
      })

      it('refuses writes after close() instead of losing them', async () => {
        const s = await start()
        const last = s.putSession(session('c1'))
        const closing = s.close()
        await expect(s.putSession(session('c2'))).rejects.toThrow(/closed/)
        await expect(s.enqueue('c1', queued('m'))).rejects.toThrow(/closed/)
        await expect(s.deleteSession('c1')).rejects.toThrow(/closed/)
        await last
        await closing
        if (restart) {
          const r = await restart(s)
          expect(r.getSession('c1')).toBeDefined()
          expect(r.getSession('c2')).toBeUndefined()
        }
      })

      it('puts the schema version on every record it returns', async () => {
        const s = await start()
        void s.putSession(session('c1'))
        void s.enqueue('c1', queued('m'))
        await s.flushed()
        expect(s.getSession('c1')!.v).toBe(SCHEMA_VERSION)
        expect(s.peekQueue('c1', 1)[0]!.v).toBe(SCHEMA_VERSION)
      })
    })
  })
}

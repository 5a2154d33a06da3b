import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { open, type RootDatabase } from 'lmdb'
import { createLogger, type Logger } from '../../src/log.js'
import { openLmdbStore, type LmdbStore, type LmdbStoreOptions } from '../../src/store/lmdb-store.js'
import { keyPart } from '../../src/store/keys.js'
import { upgradeRecord, type UpgradeTable } from '../../src/store/records.js'
import { SCHEMA_VERSION, type Store } from '../../src/store/store.js'
import { cleanupTmp, tmpDir } from '../helpers/process.js'
import { describeStore, message, session, subscription } from '../contract/store.js'

const paths = new WeakMap<Store, string>()
const quiet = createLogger({ name: 'store-test' }, () => {})

function openAt(path: string, extra: Partial<LmdbStoreOptions> = {}): LmdbStore {
  const s = openLmdbStore({ path, log: quiet, ...extra })
  paths.set(s, path)
  return s
}

describeStore('lmdb', {
  open: () => openAt(tmpDir('ringmq-store-')),
  reopen: async (s) => {
    await s.close()
    return openAt(paths.get(s)!)
  },
})

describeStore('lmdb (compression)', {
  open: () => openAt(tmpDir('ringmq-store-'), { compression: true }),
  reopen: async (s) => {
    await s.close()
    return openAt(paths.get(s)!, { compression: true })
  },
})

afterAll(() => cleanupTmp())

/** A logger that keeps warn lines, to assert on skipped records. */
function capture(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  return { lines, log: createLogger({ name: 'store-test' }, (l) => lines.push(JSON.parse(l))) }
}

describe('LmdbStore specifics', () => {
  const toClose: { close(): unknown }[] = []
  afterEach(async () => {
    for (const c of toClose.splice(0)) await c.close()
  })

  /** Opens the raw environment the store uses (the store must be closed). */
  function raw(path: string): RootDatabase {
    const env = open({ path, maxDbs: 16 })
    toClose.push(env)
    return env
  }

  it('lmdb-js alone does not show uncommitted puts (why the store keeps an overlay)', async () => {
    const env = raw(tmpDir('ringmq-store-'))
    const db = env.openDB({ name: 'probe' })
    const p = db.put('k', 1)
    expect(db.get('k')).toBeUndefined()
    await p
    expect(db.get('k')).toBe(1)
  })

  it('lays out keys as documented in docs/storage.md', async () => {
    const path = tmpDir('ringmq-store-')
    const s = openAt(path)
    await s.putSession(session('c1'))
    await s.putSubscription(subscription('c1', 'a/#'))
    const q = await s.enqueue('c1', { message: message(), qos: 1, retain: false })
    await s.addIncomingQos2('c1', 9)
    await s.putMeta('ring', { epoch: 3 })
    await s.close()
    const env = raw(path)
    const keys = (name: string) => [...env.openDB({ name }).getKeys({})]
    expect(keys('sessions')).toEqual(['c1'])
    expect(keys('subscriptions')).toEqual([['c1', 'a/#']])
    expect(keys('queue')).toEqual([['c1', q.seq]])
    expect(keys('incoming_qos2')).toEqual([['c1', 9]])
    expect(env.openDB({ name: 'meta' }).get('ring')).toEqual({ v: SCHEMA_VERSION, value: { epoch: 3 } })
  })

  it('hashes key parts that cannot be LMDB keys, injectively', () => {
    expect(keyPart('plain/topic')).toBe('plain/topic')
    const long = 'x'.repeat(5000)
    expect(keyPart(long)).not.toBe(long)
    expect(keyPart(long).length).toBeLessThan(100)
    expect(keyPart(long + 'y')).not.toBe(keyPart(long))
    expect(keyPart('a\u0000b')).not.toBe('a\u0000b')
    // a raw part can never look like a hashed one
    const hashed = keyPart(long)
    expect(keyPart(hashed)).not.toBe(hashed)
    // multi-byte characters count in bytes: 400 x 4-byte characters = 1600 bytes
    expect(keyPart('𝄞'.repeat(400))).not.toBe('𝄞'.repeat(400))
    expect(keyPart('ü'.repeat(400))).toBe('ü'.repeat(400))
  })

  it('commits the writes of one event turn in one transaction, not one commit per message', async () => {
    const s = openAt(tmpDir('ringmq-store-'))
    toClose.push(s)
    await s.flushed()
    const before = s.lastTransactionId()
    const n = 2000
    await Promise.all(Array.from({ length: n }, (_, i) => s.enqueue('c1', { message: message({ payload: Buffer.from(String(i)) }), qos: 1, retain: false })))
    expect(s.lastTransactionId() - before).toBe(1)
    expect(s.queueLength('c1')).toBe(n)
  })

  it('drops overlay entries once their writes commit, also when a key is rewritten meanwhile', async () => {
    const s = openAt(tmpDir('ringmq-store-'))
    toClose.push(s)
    await s.flushed() // the store's own first write (its settings in meta)
    expect(s.pendingWrites()).toBe(0)
    const first = s.putSession(session('c1', { protocolVersion: 3 }))
    void s.putSubscription(subscription('c1', 'f'))
    void s.enqueue('c1', { message: message(), qos: 1, retain: false })
    expect(s.pendingWrites()).toBe(3)
    await first
    // a rewrite issued after the first commit, before its own: the overlay must keep it
    const second = s.putSession(session('c1', { protocolVersion: 5 }))
    expect(s.getSession('c1')!.protocolVersion).toBe(5)
    await second
    expect(s.pendingWrites()).toBe(0)
    expect(s.getSession('c1')!.protocolVersion).toBe(5)
    // flushed() covers every write issued before it
    for (let i = 0; i < 100; i++) void s.putRetained({ v: SCHEMA_VERSION, topic: `t/${i}`, message: message() })
    void s.deleteSession('c1')
    await s.flushed()
    expect(s.pendingWrites()).toBe(0)
  })

  it('keeps the compression setting the environment was created with', async () => {
    const path = tmpDir('ringmq-store-')
    const big = Buffer.alloc(20_000, 3)
    const first = openAt(path, { compression: true })
    await first.putRetained({ v: SCHEMA_VERSION, topic: 'big', message: message({ payload: big }) })
    await first.close()
    const { log, lines } = capture()
    const second = openAt(path, { compression: false, log })
    toClose.push(second)
    expect(second.getRetained('big')!.message.payload.equals(big)).toBe(true)
    expect(lines.some((l) => l.msg === 'store compression setting ignored: the environment was created with the other one' && l.used === true)).toBe(true)
  })

  it('grows past a tiny initial map size', async () => {
    const path = tmpDir('ringmq-store-')
    let s = openAt(path, { mapSize: 128 * 1024 })
    const big = Buffer.alloc(64 * 1024, 7)
    await Promise.all(Array.from({ length: 40 }, (_, i) => s.putRetained({ v: SCHEMA_VERSION, topic: `t/${i}`, message: message({ payload: big }) })))
    expect(s.sizeBytes()).toBeGreaterThan(40 * 64 * 1024)
    await s.close()
    s = openAt(path)
    toClose.push(s)
    expect(s.getRetained('t/39')!.message.payload.equals(big)).toBe(true)
  })

  it('skips records of a newer schema version with a warn line, never crashing', async () => {
    const path = tmpDir('ringmq-store-')
    const s0 = openAt(path)
    await s0.putSession(session('ok'))
    await s0.enqueue('c1', { message: message({ payload: Buffer.from('q1') }), qos: 1, retain: false })
    await s0.enqueue('c1', { message: message({ payload: Buffer.from('q3') }), qos: 1, retain: false })
    await s0.close()
    const env = raw(path)
    await env.openDB({ name: 'sessions' }).put('future', { ...session('future'), v: SCHEMA_VERSION + 1, newField: 1 })
    await env.openDB({ name: 'sessions' }).put('junk', 'not a record')
    await env.openDB({ name: 'queue' }).put(['c1', 1.5], { v: SCHEMA_VERSION + 1, clientId: 'c1', seq: 1.5 })
    await env.close()
    toClose.pop()

    const { log, lines } = capture()
    const s = openAt(path, { log })
    toClose.push(s)
    expect(s.getSession('future')).toBeUndefined()
    expect(s.getSession('junk')).toBeUndefined()
    expect([...s.listSessions()].map((x) => x.clientId)).toEqual(['ok'])
    expect(s.peekQueue('c1', 10).map((q) => q.message.payload.toString())).toEqual(['q1', 'q3'])
    expect(s.queueLength('c1')).toBe(2)
    const warns = lines.filter((l) => l.level === 'warn')
    expect(warns.some((l) => l.msg === 'store record skipped: newer schema version' && l.db === 'sessions' && l.v === SCHEMA_VERSION + 1)).toBe(true)
    expect(warns.some((l) => l.msg === 'store record skipped: newer schema version' && l.db === 'queue')).toBe(true)
    expect(warns.some((l) => l.msg === 'store record skipped: not an object' && l.db === 'sessions')).toBe(true)
  })

  it('upgrades older records on read through the per-database upgrade table', async () => {
    const path = tmpDir('ringmq-store-')
    const env = raw(path)
    // a fake "v0" session shape: the client ID was called `id` and expiry was in ms
    await env.openDB({ name: 'sessions' }).put('old', { v: 0, id: 'old', protocolVersion: 4, expiryMs: 60_000 })
    await env.close()
    toClose.pop()

    const upgrades: UpgradeTable = {
      sessions: {
        0: ({ id, expiryMs, ...rest }) => ({ ...rest, v: 1, clientId: id, expiryInterval: (expiryMs as number) / 1000, disconnectedAt: null, will: null, willAt: null }),
      },
    }
    const withPath = openAt(path, { upgrades })
    expect(withPath.getSession('old')).toEqual(session('old', { protocolVersion: 4, expiryInterval: 60 }))
    expect([...withPath.listSessions()]).toHaveLength(1)
    await withPath.close()

    // without an upgrade path the record is skipped, not misread
    const { log, lines } = capture()
    const without = openAt(path, { log })
    toClose.push(without)
    expect(without.getSession('old')).toBeUndefined()
    expect(lines.some((l) => l.msg === 'store record skipped: no upgrade path' && l.from === 0)).toBe(true)
  })

  it('upgradeRecord rejects an upgrader that skips a version', () => {
    const { log, lines } = capture()
    const table: UpgradeTable = { meta: { 0: (r) => ({ ...r, v: 5 }) } }
    expect(upgradeRecord('meta', { v: 0, value: 1 }, log, table)).toBeUndefined()
    expect(lines[0]!.msg).toBe('store record skipped: upgrader produced a wrong version')
    expect(upgradeRecord('meta', { v: SCHEMA_VERSION, value: 1 }, log, table)).toEqual({ v: SCHEMA_VERSION, value: 1 })
    expect(upgradeRecord('meta', { value: 1 }, log)).toBeUndefined()
    expect(upgradeRecord('meta', [1], log)).toBeUndefined()
  })

  it('rejects a failed write without leaving it visible', async () => {
    const s = openAt(tmpDir('ringmq-store-'))
    toClose.push(s)
    // a value msgpack cannot encode: the write fails before anything is queued
    const bad = { ...session('c1'), willAt: 2n ** 70n }
    await expect(s.putSession(bad as never)).rejects.toThrow(/too large/)
    expect(s.getSession('c1')).toBeUndefined()
    await s.putSession(session('c1'))
    expect(s.getSession('c1')).toEqual(session('c1'))
  })

  it('backs up a live store to a directory that opens as a store', async () => {
    const s = openAt(tmpDir('ringmq-store-'))
    toClose.push(s)
    await s.putSession(session('c1'))
    await s.enqueue('c1', { message: message({ payload: Buffer.from([0, 1, 2]) }), qos: 1, retain: false })
    await s.putRetained({ v: SCHEMA_VERSION, topic: 'r', message: message({ topic: 'r' }) })
    const dir = tmpDir('ringmq-backup-')
    await s.backup(dir)
    void s.putSession(session('after-backup')) // keeps working during and after the copy
    const b = openAt(dir)
    toClose.push(b)
    expect(b.getSession('c1')).toEqual(session('c1'))
    expect(b.peekQueue('c1', 10)[0]!.message.payload.equals(Buffer.from([0, 1, 2]))).toBe(true)
    expect(b.getRetained('r')).toBeDefined()
    expect(b.getSession('after-backup')).toBeUndefined()
    await s.flushed()
    expect(s.getSession('after-backup')).toBeDefined()
  })

  it('reports enqueue throughput (64-byte payloads, 1000 concurrent writes per batch)', async () => {
    const s = openAt(tmpDir('ringmq-store-'))
    toClose.push(s)
    const total = Number(process.env.STORE_BENCH_N ?? 20_000)
    const payload = Buffer.alloc(64, 0x61)
    const started = process.hrtime.bigint()
    for (let done = 0; done < total; done += 1000) {
      await Promise.all(Array.from({ length: 1000 }, () => s.enqueue('bench', { message: message({ payload }), qos: 1, retain: false })))
    }
    const secs = Number(process.hrtime.bigint() - started) / 1e9
    console.log(`lmdb enqueue: ${total} records in ${secs.toFixed(2)} s = ${Math.round(total / secs)} records/s`)
    expect(s.queueLength('bench')).toBe(total)
  })
})

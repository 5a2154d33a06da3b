// The Store on one LMDB environment (lmdb-js) with a named database per kind of record.
// Layout, record versions and the durability guarantee are described in docs/storage.md.
//
//   database       key                      value
//   sessions       clientId                 StoredSession
//   subscriptions  [clientId, filter]       StoredSubscription
//   queue          [clientId, seq]          StoredQueued      (seq: per-client, increasing)
//   inflight       [clientId, packetId]     StoredInflight
//   incoming_qos2  [clientId, packetId]     { v }
//   retained       topic                    StoredRetained
//   meta           key                      { v, value }
//
// (string key parts go through keyPart(): long ones are hashed, see keys.ts)
//
// Durability: writes are lmdb-js async writes, batched by lmdb into one transaction per event
// turn. Their promise resolves when that transaction is COMMITTED: with overlappingSync (the
// lmdb-js default on Linux/macOS) the pages and meta page are written to the file through the
// OS page cache, and the fsync follows asynchronously (`flushed()`). Hence:
//   - process crash (kill -9, OOM kill, uncaught error) after the promise resolved: the write
//     survives. On reopen LMDB picks the newest committed meta page when the OS boot ID is
//     unchanged; we force `safeRestore: false` so the LMDB_RESTORE=safe environment variable
//     cannot silently turn this into "roll back to the last fsync".
//   - OS crash / power loss: the environment is never corrupt, but commits not yet flushed
//     may be lost (LMDB falls back to the last synced transaction). Await `flushed()` where
//     a write must survive that too.
// noSync/noMetaSync/useWritemap are deliberately not used.

import fs from 'node:fs'
import { open, type Database, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb'
import { RingmqError } from '../errors.js'
import { createLogger, type Logger } from '../log.js'
import { keyPart } from './keys.js'
import type { DatabaseName, UpgradeTable } from './records.js'
import { Table } from './table.js'
import {
  SCHEMA_VERSION,
  type Store,
  type StoredInflight,
  type StoredQueued,
  type StoredRetained,
  type StoredSession,
  type StoredSubscription,
} from './store.js'

export interface LmdbStoreOptions {
  /** directory of the environment (created if missing): data.mdb and lock.mdb */
  path: string
  log?: Logger
  /**
   * LZ4-compress large values (lmdb-js `compression`, values over 1000 bytes). Fixed when the
   * environment is created; a different value on a later open is ignored with a warning.
   */
  compression?: boolean
  /** initial map size in bytes; lmdb-js grows the map on demand */
  mapSize?: number
  /** upgrade table override, for tests of the upgrade mechanism (default: records.ts) */
  upgrades?: UpgradeTable
}

/** meta keys under `$store/` are the store's own */
const COMPRESSION_KEY = '$store/compression'

interface IncomingQos2Record {
  v: typeof SCHEMA_VERSION
}

interface MetaRecord {
  v: typeof SCHEMA_VERSION
  value: unknown
}

export function openLmdbStore(opts: LmdbStoreOptions): LmdbStore {
  return new LmdbStore(opts)
}

export class LmdbStore implements Store {
  readonly #root: RootDatabase
  readonly #path: string
  readonly #sessions: Table<StoredSession>
  readonly #subscriptions: Table<StoredSubscription>
  readonly #queue: Table<StoredQueued>
  readonly #inflight: Table<StoredInflight>
  readonly #incomingQos2: Table<IncomingQos2Record>
  readonly #retained: Table<StoredRetained>
  readonly #meta: Table<MetaRecord>
  /** last seq handed out per client; never decreases while the process lives */
  readonly #lastSeq = new Map<string, number>()
  /** queue length per client, computed on first use and kept up to date by writes */
  readonly #queueLength = new Map<string, number>()
  #closed: Promise<void> | undefined

  constructor(opts: LmdbStoreOptions) {
    fs.mkdirSync(opts.path, { recursive: true })
    this.#path = opts.path
    const log = opts.log ?? createLogger({ name: 'store' })
    const rootOptions: RootDatabaseOptionsWithPath & { safeRestore: boolean } = {
      path: opts.path,
      // always a directory: lmdb-js would otherwise take a dotted name ("/tmp/tmp.x1") for a file
      noSubdir: false,
      // the seven databases, with room for later ones (e.g. shadow sessions)
      maxDbs: 16,
      ...(opts.mapSize !== undefined ? { mapSize: opts.mapSize } : {}),
      // never roll back to the last fsync after a process crash (see the header comment);
      // lmdb-js supports the option but its typings omit it
      safeRestore: false,
    }
    this.#root = open(rootOptions)
    const table = <T>(name: DatabaseName, twoPart: boolean, compression: boolean): Table<T> => {
      const db = this.#root.openDB({ name, compression }) as Database<unknown, never>
      return new Table<T>(db, name, twoPart, log.child({ db: name }), opts.upgrades)
    }
    // meta is never compressed, so it can say how the rest was written: a compressed value
    // read without compression (or the reverse) throws, so the first open's choice sticks.
    this.#meta = table('meta', false, false)
    const requested = opts.compression ?? false
    const stored = this.getMeta<boolean>(COMPRESSION_KEY)
    const compression = stored ?? requested
    if (stored === undefined) void this.putMeta(COMPRESSION_KEY, requested)
    else if (stored !== requested) log.warn('store compression setting ignored: the environment was created with the other one', { requested, used: stored })
    this.#sessions = table('sessions', false, compression)
    this.#subscriptions = table('subscriptions', true, compression)
    this.#queue = table('queue', true, compression)
    this.#inflight = table('inflight', true, compression)
    this.#incomingQos2 = table('incoming_qos2', true, compression)
    this.#retained = table('retained', false, compression)
  }

  // sessions

  getSession(clientId: string): StoredSession | undefined {
    return this.#sessions.get(keyPart(clientId))
  }

  putSession(session: StoredSession): Promise<void> {
    return this.#sessions.put(keyPart(session.clientId), '', session)
  }

  deleteSession(clientId: string): Promise<void> {
    if (this.#closed) return closedError('deleteSession')
    const g = keyPart(clientId)
    const writes: Promise<void>[] = []
    // One lmdb batch = one transaction: a crash leaves either the whole session or none of it.
    const batch = this.#root.batch(() => {
      writes.push(this.#sessions.remove(g))
      for (const t of [this.#subscriptions, this.#queue, this.#inflight, this.#incomingQos2] as Table<unknown>[]) {
        writes.push(...t.removeGroup(g))
      }
    })
    this.#queueLength.set(clientId, 0)
    return Promise.all([batch, ...writes]).then(() => undefined)
  }

  listSessions(): Iterable<StoredSession> {
    return this.#sessions.all()
  }

  // subscriptions

  getSubscriptions(clientId: string): StoredSubscription[] {
    return [...this.#subscriptions.range(keyPart(clientId))].map(([, s]) => s)
  }

  putSubscription(sub: StoredSubscription): Promise<void> {
    return this.#subscriptions.put(keyPart(sub.clientId), keyPart(sub.filter), sub)
  }

  deleteSubscription(clientId: string, filter: string): Promise<void> {
    return this.#subscriptions.remove(keyPart(clientId), keyPart(filter))
  }

  listSubscriptions(): Iterable<StoredSubscription> {
    return this.#subscriptions.all()
  }

  // queue

  enqueue(clientId: string, item: Omit<StoredQueued, 'v' | 'clientId' | 'seq'>): Promise<StoredQueued> {
    if (this.#closed) return closedError('enqueue')
    const g = keyPart(clientId)
    const seq = this.#nextSeq(clientId, g)
    // an explicit literal (not a spread): one fixed shape for msgpackr's record structures
    const rec: StoredQueued = { v: SCHEMA_VERSION, clientId, seq, message: item.message, qos: item.qos, retain: item.retain }
    if (item.subscriptionIds !== undefined) rec.subscriptionIds = item.subscriptionIds
    const written = this.#queue.put(g, seq, rec)
    const len = this.#queueLength.get(clientId)
    if (len !== undefined) this.#queueLength.set(clientId, len + 1)
    return written.then(() => rec)
  }

  peekQueue(clientId: string, limit: number): StoredQueued[] {
    return [...this.#queue.range(keyPart(clientId), limit)].map(([, q]) => q)
  }

  removeQueued(clientId: string, seq: number): Promise<void> {
    const g = keyPart(clientId)
    const len = this.#queueLength.get(clientId)
    if (len !== undefined && this.#queue.get(g, seq) !== undefined) this.#queueLength.set(clientId, len - 1)
    return this.#queue.remove(g, seq)
  }

  queueLength(clientId: string): number {
    let len = this.#queueLength.get(clientId)
    if (len === undefined) {
      len = 0
      for (const _ of this.#queue.range(keyPart(clientId))) len++
      this.#queueLength.set(clientId, len)
    }
    return len
  }

  #tables(): Table<unknown>[] {
    return [this.#sessions, this.#subscriptions, this.#queue, this.#inflight, this.#incomingQos2, this.#retained, this.#meta] as Table<unknown>[]
  }

  /** Next seq: one above the highest ever handed out here or found on disk for the client. */
  #nextSeq(clientId: string, g: string): number {
    let last = this.#lastSeq.get(clientId)
    if (last === undefined) {
      last = 0
      for (const [seq] of this.#queue.range(g)) last = Math.max(last, seq as number)
    }
    this.#lastSeq.set(clientId, ++last)
    return last
  }

  // outgoing inflight

  putInflight(rec: StoredInflight): Promise<void> {
    return this.#inflight.put(keyPart(rec.clientId), rec.packetId, rec)
  }

  deleteInflight(clientId: string, packetId: number): Promise<void> {
    return this.#inflight.remove(keyPart(clientId), packetId)
  }

  listInflight(clientId: string): StoredInflight[] {
    return [...this.#inflight.range(keyPart(clientId))].map(([, r]) => r)
  }

  // incoming QoS 2 packet IDs [MQTT-4.3.3]

  addIncomingQos2(clientId: string, packetId: number): Promise<void> {
    return this.#incomingQos2.put(keyPart(clientId), packetId, { v: SCHEMA_VERSION })
  }

  hasIncomingQos2(clientId: string, packetId: number): boolean {
    return this.#incomingQos2.get(keyPart(clientId), packetId) !== undefined
  }

  deleteIncomingQos2(clientId: string, packetId: number): Promise<void> {
    return this.#incomingQos2.remove(keyPart(clientId), packetId)
  }

  // retained

  getRetained(topic: string): StoredRetained | undefined {
    return this.#retained.get(keyPart(topic))
  }

  putRetained(rec: StoredRetained): Promise<void> {
    return this.#retained.put(keyPart(rec.topic), '', rec)
  }

  deleteRetained(topic: string): Promise<void> {
    return this.#retained.remove(keyPart(topic))
  }

  listRetained(): Iterable<StoredRetained> {
    return this.#retained.all()
  }

  // meta

  getMeta<T>(key: string): T | undefined {
    return this.#meta.get(keyPart(key))?.value as T | undefined
  }

  putMeta<T>(key: string, value: T): Promise<void> {
    return this.#meta.put(keyPart(key), '', { v: SCHEMA_VERSION, value })
  }

  // lifecycle

  /** Resolves when every write issued so far is committed AND fsynced (survives power loss). */
  flushed(): Promise<void> {
    return Promise.resolve(this.#root.flushed).then(() => undefined)
  }

  /** Bytes of the environment in use: pages up to the last one written, times the page size. */
  sizeBytes(): number {
    if (this.#closed) return 0
    const s = this.#root.getStats() as { pageSize: number; lastPageNumber: number }
    return (s.lastPageNumber + 1) * s.pageSize
  }

  /**
   * Writes a consistent snapshot of everything committed so far to `<dir>/data.mdb`, while the
   * store stays in use (LMDB copy under a read transaction; compacted). `dir` can be opened as a
   * store, or its data.mdb copied into a stopped worker's data directory.
   */
  async backup(dir: string): Promise<void> {
    await this.#root.committed
    // the environment is a directory, so LMDB's copy takes a directory too (it must exist)
    fs.mkdirSync(dir, { recursive: true })
    await this.#root.backup(dir, true)
  }

  /** Writes issued and not yet committed, over all databases (the size of the read overlay). */
  pendingWrites(): number {
    let n = 0
    for (const t of this.#tables()) n += t.pendingCount()
    return n
  }

  /** ID of the last committed LMDB transaction (diagnostics; shows how writes are batched). */
  lastTransactionId(): number {
    return (this.#root.getStats() as { lastTxnId: number }).lastTxnId
  }

  /** Directory of the environment (for backups and diagnostics). */
  get path(): string {
    return this.#path
  }

  /** Refuses new writes at once, waits for the issued ones to be durable, closes the environment. */
  close(): Promise<void> {
    if (!this.#closed) {
      for (const t of this.#tables()) t.close()
    }
    this.#closed ??= this.flushed().then(() => this.#root.close())
    return this.#closed
  }
}

function closedError(op: string): Promise<never> {
  return Promise.reject(new RingmqError('ERR_STORE_CLOSED', `store closed: ${op}`))
}

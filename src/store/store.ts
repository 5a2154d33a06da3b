// The worker's durable state, behind one interface. `lmdb-store.ts` implements it on one LMDB
// environment with named databases; a contract suite (test/contract/store.ts) runs against it.
//
// Durability model: every write method returns a promise that resolves once the write is
// committed (LMDB batches concurrent writes into one transaction). Reads are synchronous and
// see every write issued before them, committed or not. Callers on the QoS 0 path do not
// await; a QoS 1/2 PUBACK/PUBREC for a persistent session is sent only after the promise
// resolves ("commit -> ack -> fan-out" where it matters).
//
// Every record carries `v` (schema version). Readers upgrade older versions on read; a record
// with a newer version than the code knows is skipped with a log line, never crashes.

import type { BrokerMessage, QoS } from '../mqtt/message.js'

export const SCHEMA_VERSION = 1 as const

/** A message as stored (queued, inflight, retained). Same shape as BrokerMessage. */
export type StoredMessage = BrokerMessage

export interface StoredWill {
  message: BrokerMessage
  /** seconds (5.0 Will Delay Interval); 0 = publish at once */
  delayInterval: number
}

export interface StoredSession {
  v: typeof SCHEMA_VERSION
  clientId: string
  protocolVersion: 3 | 4 | 5
  /** seconds; 0xFFFFFFFF = never expires. 3.1.1 clean=false sessions use 0xFFFFFFFF. */
  expiryInterval: number
  /** ms since epoch when the client disconnected; null while connected */
  disconnectedAt: number | null
  /** will to publish if the session ends ungracefully (kept for delayed wills across restarts) */
  will: StoredWill | null
  /** ms since epoch; when set, the will must be published at this time unless the client is back */
  willAt: number | null
}

export interface StoredSubscription {
  v: typeof SCHEMA_VERSION
  clientId: string
  /** the filter exactly as subscribed, including any `$share/group/` prefix */
  filter: string
  qos: QoS
  noLocal: boolean
  retainAsPublished: boolean
  retainHandling: 0 | 1 | 2
  subscriptionId?: number
}

/** A message waiting for an offline (or window-full) persistent session, in arrival order. */
export interface StoredQueued {
  v: typeof SCHEMA_VERSION
  clientId: string
  /** per-client monotonically increasing sequence; the key order */
  seq: number
  message: StoredMessage
  /** QoS granted for this delivery: min(message qos, subscription qos) */
  qos: QoS
  subscriptionIds?: number[]
  /** retain flag to deliver (retain-as-published) */
  retain: boolean
}

/** Outgoing QoS 1/2 delivery sent but not completed. */
export interface StoredInflight {
  v: typeof SCHEMA_VERSION
  clientId: string
  packetId: number
  /** 'publish': waiting PUBACK/PUBREC; 'pubrel': PUBREC received, waiting PUBCOMP */
  state: 'publish' | 'pubrel'
  qos: QoS
  message: StoredMessage
  subscriptionIds?: number[]
  retain: boolean
}

export interface StoredRetained {
  v: typeof SCHEMA_VERSION
  topic: string
  message: StoredMessage
  /** hybrid logical clock of the write, for cluster last-writer-wins (set by the fabric) */
  hlc?: { wall: number; logical: number; node: string }
}

export interface Store {
  // sessions
  getSession(clientId: string): StoredSession | undefined
  putSession(session: StoredSession): Promise<void>
  /** Removes the session and everything keyed by it: subscriptions, queue, inflight, incoming QoS 2 IDs. */
  deleteSession(clientId: string): Promise<void>
  listSessions(): Iterable<StoredSession>

  // subscriptions
  getSubscriptions(clientId: string): StoredSubscription[]
  putSubscription(sub: StoredSubscription): Promise<void>
  deleteSubscription(clientId: string, filter: string): Promise<void>
  listSubscriptions(): Iterable<StoredSubscription>

  // queue for offline persistent sessions (ordered by seq)
  /** Appends; assigns `seq`. Returns the committed record. */
  enqueue(clientId: string, item: Omit<StoredQueued, 'v' | 'clientId' | 'seq'>): Promise<StoredQueued>
  /** Up to `limit` oldest queued items. */
  peekQueue(clientId: string, limit: number): StoredQueued[]
  removeQueued(clientId: string, seq: number): Promise<void>
  queueLength(clientId: string): number

  // outgoing inflight
  putInflight(rec: StoredInflight): Promise<void>
  deleteInflight(clientId: string, packetId: number): Promise<void>
  listInflight(clientId: string): StoredInflight[]

  // incoming QoS 2 packet IDs (PUBREC sent, PUBREL not yet received) [MQTT-4.3.3]
  addIncomingQos2(clientId: string, packetId: number): Promise<void>
  hasIncomingQos2(clientId: string, packetId: number): boolean
  deleteIncomingQos2(clientId: string, packetId: number): Promise<void>

  // retained messages
  getRetained(topic: string): StoredRetained | undefined
  putRetained(rec: StoredRetained): Promise<void>
  deleteRetained(topic: string): Promise<void>
  listRetained(): Iterable<StoredRetained>

  // node metadata (ring spec, clocks, ...)
  getMeta<T>(key: string): T | undefined
  putMeta<T>(key: string, value: T): Promise<void>

  /** Resolves when every write issued so far is committed. */
  flushed(): Promise<void>
  /** Bytes used by the environment (for the LMDB size metric). */
  sizeBytes(): number
  close(): Promise<void>
}

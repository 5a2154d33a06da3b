// One MQTT session: subscriptions, the outgoing QoS 1/2 inflight window, the queue of messages
// waiting for the window (or for the client to come back), and incoming QoS 2 packet IDs.
//
// A persistent session (expiry > 0) mirrors every change into the store; the promise of that
// write is handed back to the publisher's handler, which acknowledges only after commit.
// A clean session (expiry 0) lives in memory only.
//
//   deliver() ─ qos 0 ─> connection (dropped when offline or the socket is over its limit)
//             └ qos>0 ─> window free? inflight + send : queue (bounded, overflow policy)
//   PUBACK / PUBCOMP ─> inflight - 1 ─> drain() moves queued messages into the window
//
// QoS 1 inflight records of persistent sessions are written behind (inflight-writer.ts): a
// PUBACK that arrives before the record was written cancels it, and a message drained from
// the queue keeps its queue record until its inflight record is written (or it is acked).

import type { BrokerMessage, QoS } from '../src/mqtt/message.js'
import type { StoredInflight, StoredQueued, StoredWill } from '../src/store/store.js'
import type { Broker } from './broker.js'
import type { Connection } from './connection.js'
import type { EncodeCache } from './encode.js'
import type { InflightWrite } from './inflight-writer.js'
import type { Subscription } from './subscription.js'

export interface Outgoing {
  msg: BrokerMessage
  qos: 1 | 2
  retain: boolean
  subIds: number[] | undefined
  /** 'publish': waiting for PUBACK/PUBREC; 'pubrel': PUBREC received, waiting for PUBCOMP */
  state: 'publish' | 'pubrel'
  /** QoS 1 of a persistent session: its write-behind inflight record (inflight-writer.ts) */
  write?: InflightWrite
}

interface Queued {
  msg: BrokerMessage
  qos: QoS
  retain: boolean
  subIds: number[] | undefined
  /** store sequence once known (persistent sessions) */
  seq: number | undefined
  pending: Promise<StoredQueued> | undefined
}

export const NEVER_EXPIRES = 0xffffffff

export class Session {
  conn: Connection | null = null
  /** seconds; 0 = ends with the connection */
  expiryInterval = 0
  protocolVersion: 3 | 4 | 5 = 4
  /** a session record exists in the store */
  stored = false
  disconnectedAt: number | null = null
  will: StoredWill | null = null
  /** when a delayed will is due (ms since epoch) */
  willAt: number | null = null
  readonly subs = new Map<string, Subscription>()
  readonly inflight = new Map<number, Outgoing>()
  readonly incomingQos2 = new Set<number>()
  #queue: Queued[] = []
  #nextId = 1

  // scratch fields for fan-out de-duplication of overlapping subscriptions
  fanMark = 0
  fanQos: QoS = 0
  fanRetain = false
  fanSubIds: number[] | undefined = undefined

  constructor(readonly broker: Broker, readonly clientId: string) {}

  get persistent(): boolean {
    return this.expiryInterval > 0
  }

  get queueLength(): number {
    return this.#queue.length
  }

  /** Hands one message to this session. Returns the store promise a QoS 1/2 ack must wait for. */
  deliver(msg: BrokerMessage, qos: QoS, retain: boolean, subIds: number[] | undefined, enc: EncodeCache | null): Promise<unknown> | undefined {
    const conn = this.conn
    if (qos === 0) {
      if (conn !== null) conn.sendPublish(msg, 0, retain, subIds, 0, false, enc)
      else this.broker.stats.drop('offline_qos0')
      return undefined
    }
    if (msg.expiresAt !== undefined && msg.expiresAt <= Date.now()) {
      this.broker.stats.drop('expired')
      return undefined
    }
    if (conn !== null && this.#queue.length === 0 && this.inflight.size < conn.sendQuota && !conn.congested) {
      return this.#send(conn, msg, qos, retain, subIds, enc, null)
    }
    return this.#enqueue(msg, qos, retain, subIds)
  }

  /** `dequeue` removes the store's queue record of a drained message, once that is safe. */
  #send(
    conn: Connection, msg: BrokerMessage, qos: 1 | 2, retain: boolean, subIds: number[] | undefined, enc: EncodeCache | null,
    dequeue: (() => void) | null,
  ): Promise<unknown> | undefined {
    const id = this.#allocId()
    if (id === 0) {
      dequeue?.()
      return this.#enqueue(msg, qos, retain, subIds)
    }
    const out: Outgoing = { msg, qos, retain, subIds, state: 'publish' }
    this.inflight.set(id, out)
    let p: Promise<unknown> | undefined
    if (this.persistent) {
      // an explicit literal (not a spread): one fixed shape for msgpackr's record structures
      const rec: StoredInflight = { v: 1, clientId: this.clientId, packetId: id, state: 'publish', qos, message: msg, retain }
      if (subIds !== undefined) rec.subscriptionIds = subIds
      if (qos === 1) {
        out.write = { rec, dequeue, state: 'pending' }
        p = this.broker.inflightWriter.add(out.write)
      } else {
        p = this.broker.store.putInflight(rec)
        dequeue?.()
      }
    }
    if (!conn.sendPublish(msg, qos, retain, subIds, id, false, enc)) {
      // too large for the client: the spec says behave as if it was delivered [MQTT-3.1.2-25]
      this.#complete(id)
    }
    return p
  }

  #enqueue(msg: BrokerMessage, qos: QoS, retain: boolean, subIds: number[] | undefined): Promise<unknown> | undefined {
    const limits = this.broker.limits
    if (this.#queue.length >= limits.maxQueue) {
      this.broker.stats.drop('queue_full')
      if (limits.queueOverflow === 'drop-new') return undefined
      this.#forgetQueued(this.#queue.shift()!)
    }
    const item: Queued = { msg, qos, retain, subIds, seq: undefined, pending: undefined }
    this.#queue.push(item)
    if (!this.persistent) return undefined
    const p = this.broker.store.enqueue(this.clientId, { message: msg, qos, retain, ...(subIds ? { subscriptionIds: subIds } : {}) })
    item.pending = p
    p.then((rec) => (item.seq = rec.seq), () => undefined)
    return p
  }

  #forgetQueued(item: Queued): void {
    if (!this.persistent) return
    if (item.seq !== undefined) void this.broker.store.removeQueued(this.clientId, item.seq)
    else if (item.pending) item.pending.then((rec) => this.broker.store.removeQueued(this.clientId, rec.seq), () => undefined)
  }

  /** Restores a queued record read from the store at startup. */
  restoreQueued(rec: StoredQueued): void {
    this.#queue.push({ msg: rec.message, qos: rec.qos, retain: rec.retain, subIds: rec.subscriptionIds, seq: rec.seq, pending: undefined })
  }

  #allocId(): number {
    // 65535 IDs; a full window never gets here because sendQuota <= 65535
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.#nextId
      this.#nextId = id === 65535 ? 1 : id + 1
      if (!this.inflight.has(id)) return id
    }
    return 0
  }

  /** Moves queued messages into the inflight window while there is room. */
  drain(): void {
    const conn = this.conn
    if (conn === null) return
    const now = Date.now()
    while (this.#queue.length > 0 && this.inflight.size < conn.sendQuota && !conn.congested) {
      const item = this.#queue.shift()!
      if (item.msg.expiresAt !== undefined && item.msg.expiresAt <= now) {
        this.#forgetQueued(item)
        this.broker.stats.drop('expired')
        continue
      }
      if (item.qos === 0) {
        this.#forgetQueued(item)
        conn.sendPublish(item.msg, 0, item.retain, item.subIds, 0, false, null)
      } else this.#send(conn, item.msg, item.qos, item.retain, item.subIds, null, this.persistent ? () => this.#forgetQueued(item) : null)
    }
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) from the client. Returns false for an unknown ID. */
  acknowledged(packetId: number, expect: 'publish' | 'pubrel', qos: 1 | 2): boolean {
    const out = this.inflight.get(packetId)
    if (out === undefined || out.state !== expect || out.qos !== qos) return false
    this.#complete(packetId)
    this.drain()
    return true
  }

  /** PUBREC from the client: the message moves to 'pubrel'. Returns false for an unknown ID. */
  /**
   * PUBREC for an outgoing QoS 2 message: the flow moves on to PUBREL. False for an ID not in
   * flight; else the store write the PUBREL must wait for (undefined when there is none): once
   * a PUBREL is sent the PUBLISH must never be sent again [MQTT-4.3.3-1], so a restart
   * must find the flow in its PUBREL state.
   */
  received(packetId: number): false | Promise<void> | undefined {
    const out = this.inflight.get(packetId)
    if (out === undefined || out.qos !== 2) return false
    if (out.state !== 'publish') return undefined
    out.state = 'pubrel'
    if (!this.persistent) return undefined
    return this.broker.store.putInflight({ v: 1, clientId: this.clientId, packetId, state: 'pubrel', qos: 2, message: out.msg, retain: out.retain, ...(out.subIds ? { subscriptionIds: out.subIds } : {}) })
  }

  /** A PUBREC with an error reason ends the QoS 2 flow [MQTT-4.3.3]. */
  abandon(packetId: number): void {
    if (this.inflight.has(packetId)) {
      this.#complete(packetId)
      this.drain()
    }
  }

  #complete(packetId: number): void {
    const out = this.inflight.get(packetId)
    this.inflight.delete(packetId)
    if (!this.persistent) return
    const w = out?.write
    if (w !== undefined && this.broker.inflightWriter.cancel(w)) {
      // acknowledged before its record was written: nothing to delete, only the queue record
      w.dequeue?.()
      return
    }
    void this.broker.store.deleteInflight(this.clientId, packetId)
  }

  /** Session end: forgets the window; records not yet written never will be. */
  dropInflight(): void {
    for (const out of this.inflight.values()) if (out.write !== undefined) this.broker.inflightWriter.cancel(out.write)
    this.inflight.clear()
  }

  /** After a reconnect with a present session: resend every unacknowledged message with DUP [MQTT-4.4.0-1]. */
  resume(): void {
    const conn = this.conn
    if (conn === null) return
    const now = Date.now()
    for (const [id, out] of this.inflight) {
      if (out.state === 'pubrel') conn.sendPubrel(id)
      else if (out.msg.expiresAt !== undefined && out.msg.expiresAt <= now) {
        this.broker.stats.drop('expired')
        this.#complete(id)
      } else if (!conn.sendPublish(out.msg, out.qos, out.retain, out.subIds, id, true, null)) this.#complete(id)
    }
    this.drain()
  }

  /** Restores an inflight record read from the store at startup. */
  restoreInflight(packetId: number, out: Outgoing): void {
    this.inflight.set(packetId, out)
    if (packetId >= this.#nextId) this.#nextId = packetId === 65535 ? 1 : packetId + 1
  }

  /** Drops everything queued (session end). */
  clearQueue(): void {
    this.#queue.length = 0
  }
}

// Retained messages: one per topic, in memory for delivery and in the store for restarts.
// Set by a local PUBLISH with retain=1 (empty payload clears [MQTT-3.3.1-6]) or by the cluster
// (`applyRetained`, already resolved last-writer-wins elsewhere). Expired messages are never
// delivered and are removed by the broker's sweep [MQTT-3.3.2-5].
//
// In a cluster every write carries its last-writer-wins stamp (`RetainedStamp`), stored in
// the record's `hlc`, and a clear is stored as a tombstone: a record with an empty payload
// and a stamp (an empty payload is never a retained message [MQTT-3.3.1-7], so the two cannot
// be confused). Tombstones are never delivered; the fabric drops them when they expire.
// Without a cluster (no stamp) a clear deletes the record, as before.

import { Buffer } from 'node:buffer'
import type { BrokerMessage } from '../src/mqtt/message.js'
import type { Store, StoredRetained } from '../src/store/store.js'
import { hasWildcard, matchesFilter } from '../src/mqtt/topic.js'
import type { RetainedStamp } from './fabric.js'

export interface RetainedRecord {
  topic: string
  /** null = tombstone */
  msg: BrokerMessage | null
  stamp?: RetainedStamp
}

export class RetainedSet {
  readonly #byTopic = new Map<string, BrokerMessage>()
  /** topic -> stamp of a retained message or a tombstone (cluster only) */
  readonly #stamps = new Map<string, RetainedStamp>()

  constructor(readonly store: Store) {}

  get size(): number {
    return this.#byTopic.size
  }

  /** Loads every stored retained message and tombstone, dropping expired messages. */
  load(now: number): void {
    for (const rec of this.store.listRetained()) {
      const tombstone = rec.message.payload.length === 0
      if ((tombstone && rec.hlc === undefined) || (rec.message.expiresAt !== undefined && rec.message.expiresAt <= now)) {
        void this.store.deleteRetained(rec.topic)
        continue
      }
      if (rec.hlc !== undefined) this.#stamps.set(rec.topic, rec.hlc)
      if (!tombstone) this.#byTopic.set(rec.topic, rec.message)
    }
  }

  /** Stores (msg) or clears (null) with an optional cluster stamp; returns the commit promise. */
  set(topic: string, msg: BrokerMessage | null, stamp?: RetainedStamp): Promise<void> {
    if (stamp === undefined) this.#stamps.delete(topic)
    else this.#stamps.set(topic, stamp)
    if (msg === null) {
      const had = this.#byTopic.delete(topic)
      if (stamp !== undefined) return this.store.putRetained(this.#tombstone(topic, stamp))
      return had || this.store.getRetained(topic) !== undefined ? this.store.deleteRetained(topic) : Promise.resolve()
    }
    this.#byTopic.set(topic, msg)
    const rec: StoredRetained = { v: 1, topic, message: msg }
    if (stamp !== undefined) rec.hlc = stamp
    return this.store.putRetained(rec)
  }

  /** Retained messages matching a subscription filter, unexpired. */
  match(filter: string, now: number): BrokerMessage[] {
    const out: BrokerMessage[] = []
    if (!hasWildcard(filter)) {
      const m = this.#byTopic.get(filter)
      if (m !== undefined && !(m.expiresAt !== undefined && m.expiresAt <= now)) out.push(m)
      return out
    }
    for (const [topic, m] of this.#byTopic) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) continue
      if (matchesFilter(filter, topic)) out.push(m)
    }
    return out
  }

  /** Every message and tombstone with its stamp (for seeding the cluster's registers). */
  *records(): Iterable<RetainedRecord> {
    for (const [topic, msg] of this.#byTopic) {
      const stamp = this.#stamps.get(topic)
      yield stamp === undefined ? { topic, msg } : { topic, msg, stamp }
    }
    for (const [topic, stamp] of this.#stamps) if (!this.#byTopic.has(topic)) yield { topic, msg: null, stamp }
  }

  /** Removes expired messages; returns how many. */
  sweep(now: number): number {
    let n = 0
    for (const [topic, m] of this.#byTopic) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) {
        this.#byTopic.delete(topic)
        this.#stamps.delete(topic)
        void this.store.deleteRetained(topic)
        n++
      }
    }
    return n
  }

  #tombstone(topic: string, stamp: RetainedStamp): StoredRetained {
    return { v: 1, topic, message: { topic, payload: Buffer.alloc(0), qos: 0, retain: true, origin: stamp.node, publisherId: '' }, hlc: stamp }
  }
}

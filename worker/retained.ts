// Retained messages: one per topic, in memory for delivery and in the store for restarts.
// Set by a local PUBLISH with retain=1 (empty payload clears [MQTT-3.3.1-6]) or by the cluster
// (`applyRetained`, already resolved last-writer-wins elsewhere). Expired messages are never
// delivered and are removed by the broker's sweep [MQTT-3.3.2-5].

import type { BrokerMessage } from '../src/mqtt/message.js'
import type { Store } from '../src/store/store.js'
import { hasWildcard, matchesFilter } from '../src/mqtt/topic.js'

export class RetainedSet {
  readonly #byTopic = new Map<string, BrokerMessage>()

  constructor(readonly store: Store) {}

  get size(): number {
    return this.#byTopic.size
  }

  /** Loads every stored retained message, dropping expired ones. */
  load(now: number): void {
    for (const rec of this.store.listRetained()) {
      if (rec.message.expiresAt !== undefined && rec.message.expiresAt <= now) void this.store.deleteRetained(rec.topic)
      else this.#byTopic.set(rec.topic, rec.message)
    }
  }

  /** Stores (msg) or clears (null); returns the commit promise. */
  set(topic: string, msg: BrokerMessage | null): Promise<void> {
    if (msg === null) {
      if (!this.#byTopic.delete(topic)) return Promise.resolve()
      return this.store.deleteRetained(topic)
    }
    this.#byTopic.set(topic, msg)
    return this.store.putRetained({ v: 1, topic, message: msg })
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

  *entries(): Iterable<{ topic: string; msg: BrokerMessage }> {
    for (const [topic, msg] of this.#byTopic) yield { topic, msg }
  }

  /** Removes expired messages; returns how many. */
  sweep(now: number): number {
    let n = 0
    for (const [topic, m] of this.#byTopic) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) {
        this.#byTopic.delete(topic)
        void this.store.deleteRetained(topic)
        n++
      }
    }
    return n
  }
}

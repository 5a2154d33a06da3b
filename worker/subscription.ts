// What the broker's trie holds: one `Subscription` per (session, filter), and one
// `SharedGroup` per `$share/{group}/{filter}` collecting its local members.

import type { QoS } from '../src/mqtt/message.js'
import type { StoredSubscription } from '../src/store/store.js'
import type { Session } from './session.js'

export interface Subscription {
  readonly kind: 'sub'
  readonly session: Session
  /** as subscribed, including any `$share/group/` prefix */
  readonly full: string
  /** the topic filter without share prefix (the trie key) */
  readonly filter: string
  readonly group: string | null
  qos: QoS
  noLocal: boolean
  retainAsPublished: boolean
  retainHandling: 0 | 1 | 2
  subscriptionId: number | undefined
}

export class SharedGroup {
  readonly kind = 'group' as const
  readonly members: Subscription[] = []
  /** round-robin cursor over local members and remote workers */
  next = 0
  constructor(readonly key: string, readonly group: string, readonly filter: string) {}
}

export type TrieEntry = Subscription | SharedGroup

export function toStored(sub: Subscription): StoredSubscription {
  return {
    v: 1,
    clientId: sub.session.clientId,
    filter: sub.full,
    qos: sub.qos,
    noLocal: sub.noLocal,
    retainAsPublished: sub.retainAsPublished,
    retainHandling: sub.retainHandling,
    ...(sub.subscriptionId !== undefined ? { subscriptionId: sub.subscriptionId } : {}),
  }
}

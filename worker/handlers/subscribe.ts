// SUBSCRIBE: validate each filter, add or replace the subscription, SUBACK with a reason code
// per filter, then retained messages per Retain Handling. For a persistent session SUBACK
// waits for the subscription to commit, so an acknowledged subscription survives a crash.

import type { ISubscribePacket } from 'mqtt-packet'
import type { QoS } from '../../src/mqtt/message.js'
import { parseShared, validateFilter } from '../../src/mqtt/topic.js'
import type { Connection } from '../connection.js'
import { RC } from '../reason-codes.js'
import type { Subscription } from '../subscription.js'

export function handleSubscribe(conn: Connection, packet: ISubscribePacket): void {
  const b = conn.broker
  const session = conn.session!
  const id = packet.messageId ?? 0
  if (id === 0) return conn.protocolError('packet_id_zero', RC.MalformedPacket)
  // a SUBSCRIBE with no filter is malformed [MQTT-3.8.3-3]
  if (packet.subscriptions.length === 0) return conn.protocolError('empty_subscribe', RC.ProtocolError)
  const subId = packet.properties?.subscriptionIdentifier
  if (subId === 0) return conn.protocolError('subscription_id_zero', RC.ProtocolError)
  const v5 = conn.version === 5
  const granted: number[] = []
  const writes: Promise<void>[] = []
  const retainedFor: Subscription[] = []

  for (const s of packet.subscriptions) {
    const shared = parseShared(s.topic)
    if (shared !== null && 'error' in shared) {
      if (!v5) return conn.protocolError('bad_topic_filter', null, shared.error)
      b.stats.protocolError('bad_topic_filter')
      conn.log.info('refused filter', { filter: s.topic, reason: shared.error })
      granted.push(v5 ? RC.TopicFilterInvalid : 0x80)
      continue
    }
    const filter = shared ? shared.filter : s.topic
    const bad = validateFilter(filter)
    // 3.1.1 has no per-filter reason for a malformed filter: a protocol violation closes [MQTT-4.8.0-1]
    if (bad !== null && !v5) return conn.protocolError('bad_topic_filter', null, bad)
    if (bad !== null) {
      b.stats.protocolError('bad_topic_filter')
      conn.log.info('refused filter', { filter: s.topic, reason: bad })
      granted.push(v5 ? RC.TopicFilterInvalid : 0x80)
      continue
    }
    if (shared && s.nl) {
      // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]
      return conn.protocolError('no_local_on_shared', RC.ProtocolError)
    }
    const qos = s.qos as QoS
    const existing = session.subs.get(s.topic)
    const rh = (v5 ? s.rh ?? 0 : 0) as 0 | 1 | 2
    let sub: Subscription
    if (existing) {
      // same filter again: the subscription is replaced [MQTT-3.8.4-3]
      existing.qos = qos
      existing.noLocal = v5 && !!s.nl
      existing.retainAsPublished = v5 && !!s.rap
      existing.retainHandling = rh
      existing.subscriptionId = subId
      sub = existing
      if (session.persistent) writes.push(b.store.putSubscription({ v: 1, clientId: session.clientId, filter: s.topic, qos, noLocal: sub.noLocal, retainAsPublished: sub.retainAsPublished, retainHandling: rh, ...(subId !== undefined ? { subscriptionId: subId } : {}) }))
    } else {
      sub = {
        kind: 'sub', session, full: s.topic, filter, group: shared ? shared.group : null,
        qos, noLocal: v5 && !!s.nl, retainAsPublished: v5 && !!s.rap, retainHandling: rh, subscriptionId: subId,
      }
      const w = b.addSubscription(session, sub, true)
      if (w) writes.push(w)
    }
    granted.push(qos)
    // retained messages on subscribe: rh 0 always, rh 1 only for a new subscription, never for shared [MQTT-3.3.1-9..11]
    if (!shared && (rh === 0 || (rh === 1 && !existing))) retainedFor.push(sub)
  }

  const reply = (): void => {
    conn.send(v5 ? { cmd: 'suback', messageId: id, granted, reasonCode: 0 } as never : { cmd: 'suback', messageId: id, granted })
    const now = Date.now()
    for (const sub of retainedFor) {
      for (const m of b.retained.match(sub.filter, now)) {
        // delivered because of the new subscription: retain flag set [MQTT-3.3.1-8]
        session.deliver(m, m.qos < sub.qos ? m.qos : sub.qos, true, sub.subscriptionId === undefined ? undefined : [sub.subscriptionId], null)
      }
    }
  }
  if (writes.length === 0) reply()
  else
    Promise.all(writes).then(reply, (err: Error) => {
      conn.log.error('subscription not committed', { err })
      conn.end('commit_failed')
    })
}

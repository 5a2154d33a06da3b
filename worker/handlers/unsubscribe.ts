// UNSUBSCRIBE: remove each filter that exists; UNSUBACK (5.0 with a reason code per filter).

import type { IUnsubscribePacket } from 'mqtt-packet'
import { parseShared, validateFilter } from '../../src/mqtt/topic.js'
import type { Connection } from '../connection.js'
import { RC } from '../reason-codes.js'

export function handleUnsubscribe(conn: Connection, packet: IUnsubscribePacket): void {
  const b = conn.broker
  const session = conn.session!
  const id = packet.messageId ?? 0
  if (id === 0) return conn.protocolError('packet_id_zero', RC.MalformedPacket)
  if (packet.unsubscriptions.length === 0) return conn.protocolError('empty_unsubscribe', RC.ProtocolError)
  const codes: number[] = []
  for (const full of packet.unsubscriptions) {
    const shared = parseShared(full)
    const filter = shared === null ? full : 'error' in shared ? null : shared.filter
    if (filter === null || validateFilter(filter) !== null) {
      b.stats.protocolError('bad_topic_filter')
      codes.push(RC.TopicFilterInvalid)
      continue
    }
    const sub = session.subs.get(full)
    if (!sub) {
      codes.push(RC.NoSubscriptionExisted)
      continue
    }
    b.removeSubscription(session, sub, true)
    codes.push(RC.Success)
  }
  if (conn.version === 5) conn.send({ cmd: 'unsuback', messageId: id, granted: codes } as never)
  else conn.send({ cmd: 'unsuback', messageId: id } as never)
}

// PUBLISH from a client: topic alias, validation, then Broker.publish (retained + fan-out).
// QoS 0 never waits. QoS 1/2: PUBACK/PUBREC once every store write and forward the message
// caused has committed ("commit -> ack"); when none was needed, in the same turn.

import type { IPublishPacket } from 'mqtt-packet'
import type { BrokerMessage, MessageProperties } from '../../src/mqtt/message.js'
import { validateTopicName } from '../../src/mqtt/topic.js'
import { Commit, type Settle } from '../commit.js'
import type { Connection } from '../connection.js'
import type { Session } from '../session.js'
import type { FastPublish } from '../frame-reader.js'
import { RC } from '../reason-codes.js'

const PUBACK = 0x40
const PUBREC = 0x50

export function handlePublish(conn: Connection, packet: IPublishPacket): void {
  const b = conn.broker
  let topic = packet.topic
  const props = packet.properties
  if (props !== undefined) {
    const alias = props.topicAlias
    if (alias !== undefined) {
      // alias 0 or above our Topic Alias Maximum is a protocol error [MQTT-3.3.2-8, MQTT-3.3.2-9]
      if (alias === 0 || alias > b.limits.topicAliasMaximum) return conn.protocolError('topic_alias_invalid', RC.TopicAliasInvalid)
      if (topic.length === 0) {
        const known = conn.aliasesIn.get(alias)
        if (known === undefined) return conn.protocolError('topic_alias_unknown', RC.ProtocolError)
        topic = known
      } else conn.aliasesIn.set(alias, topic)
    }
    // a client must not send a Subscription Identifier [MQTT-3.3.4-6]
    if (props.subscriptionIdentifier !== undefined) return conn.protocolError('subscription_id_in_publish', RC.ProtocolError)
  }
  // the frame reader hands out the same string while a client repeats its topic
  if (topic !== conn.validTopic) {
    const bad = validateTopicName(topic)
    if (bad !== null) return conn.protocolError('bad_topic_name', RC.TopicNameInvalid, bad)
    conn.validTopic = topic
  }
  const qos = packet.qos
  const id = packet.messageId ?? 0
  // a QoS > 0 PUBLISH carries a non-zero packet identifier [MQTT-2.2.1-3]
  if (qos > 0 && id === 0) return conn.protocolError('packet_id_zero', RC.MalformedPacket)

  const msg: BrokerMessage = {
    topic,
    payload: packet.payload as Buffer,
    qos,
    retain: packet.retain,
    origin: b.workerId,
    publisherId: conn.clientId,
  }
  if (props !== undefined) {
    let mp: MessageProperties | undefined
    if (props.payloadFormatIndicator !== undefined) (mp ??= {}).payloadFormatIndicator = props.payloadFormatIndicator
    if (props.contentType !== undefined) (mp ??= {}).contentType = props.contentType
    if (props.responseTopic !== undefined) {
      const badResp = validateTopicName(props.responseTopic)
      if (badResp !== null) return conn.protocolError('bad_response_topic', RC.ProtocolError, badResp)
      ;(mp ??= {}).responseTopic = props.responseTopic
    }
    if (props.correlationData !== undefined) (mp ??= {}).correlationData = props.correlationData
    if (props.userProperties !== undefined) (mp ??= {}).userProperties = props.userProperties
    if (mp !== undefined) msg.properties = mp
    if (props.messageExpiryInterval !== undefined) msg.expiresAt = Date.now() + props.messageExpiryInterval * 1000
  }

  if (qos === 0) {
    // a plain QoS 0 frame from the fast path is sent on as it came (encode.ts)
    const frame = (packet as FastPublish).frame
    if (frame !== undefined) b.enc.prime(msg, frame, conn.version === 5)
    b.publish(msg, null)
    return
  }

  const session = conn.session!
  if (qos === 2 && (session.incomingQos2.has(id) || (session.persistent && b.store.hasIncomingQos2(conn.clientId, id)))) {
    // a resent QoS 2 PUBLISH whose PUBREL has not come yet: acknowledge, do not deliver again [MQTT-4.3.3-10]
    conn.sendAck(PUBREC, id)
    return
  }
  // the broker's Receive Maximum bounds unacknowledged QoS 1/2 PUBLISHes [MQTT-3.3.4-9]
  if (++conn.unacked > b.limits.receiveMaximum && conn.version === 5) {
    return conn.protocolError('receive_maximum_exceeded', RC.ReceiveMaximumExceeded)
  }
  const commit = new Commit()
  if (qos === 2) {
    session.incomingQos2.add(id)
    if (session.persistent) commit.add(b.store.addIncomingQos2(conn.clientId, id))
  }
  b.publish(msg, commit)
  // acknowledged within this call when nothing had to be waited for
  commit.seal(new PublishAck(conn, session, id, qos, topic))
}

/** Sends PUBACK/PUBREC once everything the PUBLISH caused has committed. */
class PublishAck implements Settle {
  constructor(
    readonly conn: Connection,
    readonly session: Session,
    readonly id: number,
    readonly qos: 1 | 2,
    readonly topic: string,
  ) {}

  settle(err: Error | null): void {
    const { conn, id, qos } = this
    const type = qos === 1 ? PUBACK : PUBREC
    if (err === null) {
      if (qos === 1) conn.unacked--
      conn.sendAck(type, id)
      return
    }
    conn.log.error('publish not committed', { topic: this.topic, err })
    conn.broker.stats.drop('commit_failed')
    // 5.0 can say so; a 3.1.1 client learns only by the closed connection and resends later
    if (conn.version === 5) {
      if (qos === 1) conn.unacked--
      else this.session.incomingQos2.delete(id)
      conn.sendAck(type, id, RC.UnspecifiedError)
    } else conn.end('commit_failed')
  }
}

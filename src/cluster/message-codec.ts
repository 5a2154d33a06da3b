// BrokerMessage <-> ForwardedMessage (proto). Presence of optional MQTT 5 properties is
// carried by has_* flags because an empty string is a valid property value.

import { Buffer } from 'node:buffer'
import type { BrokerMessage, MessageProperties, QoS } from '../mqtt/message.js'
import type { PbForwardedMessage, PbMessageProperties, PbUserProperty } from './proto-types.js'

export function encodeMessage(msg: BrokerMessage, msgId: number, groups: string[], normal: boolean): Partial<PbForwardedMessage> {
  return {
    msg_id: msgId,
    topic: msg.topic,
    payload: msg.payload,
    qos: msg.qos,
    retain: msg.retain,
    properties: msg.properties ? encodeProperties(msg.properties) : null,
    expires_at: msg.expiresAt ?? 0,
    origin: msg.origin,
    publisher_id: msg.publisherId,
    groups,
    normal,
  }
}

export function decodeMessage(pb: PbForwardedMessage): BrokerMessage {
  const msg: BrokerMessage = {
    topic: pb.topic,
    payload: pb.payload,
    qos: (pb.qos <= 2 ? pb.qos : 2) as QoS,
    retain: pb.retain,
    origin: pb.origin,
    publisherId: pb.publisher_id,
  }
  if (pb.properties) msg.properties = decodeProperties(pb.properties)
  if (pb.expires_at > 0) msg.expiresAt = pb.expires_at
  return msg
}

function encodeProperties(p: MessageProperties): PbMessageProperties {
  const user: PbUserProperty[] = []
  for (const [key, v] of Object.entries(p.userProperties ?? {})) {
    for (const value of Array.isArray(v) ? v : [v]) user.push({ key, value })
  }
  return {
    has_payload_format_indicator: p.payloadFormatIndicator !== undefined,
    payload_format_indicator: p.payloadFormatIndicator ?? false,
    has_content_type: p.contentType !== undefined,
    content_type: p.contentType ?? '',
    has_response_topic: p.responseTopic !== undefined,
    response_topic: p.responseTopic ?? '',
    has_correlation_data: p.correlationData !== undefined,
    correlation_data: p.correlationData ?? Buffer.alloc(0),
    user_properties: user,
  }
}

function decodeProperties(pb: PbMessageProperties): MessageProperties {
  const p: MessageProperties = {}
  if (pb.has_payload_format_indicator) p.payloadFormatIndicator = pb.payload_format_indicator
  if (pb.has_content_type) p.contentType = pb.content_type
  if (pb.has_response_topic) p.responseTopic = pb.response_topic
  if (pb.has_correlation_data) p.correlationData = pb.correlation_data
  if (pb.user_properties.length > 0) {
    const user: Record<string, string | string[]> = {}
    for (const { key, value } of pb.user_properties) {
      const cur = user[key]
      user[key] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value]
    }
    p.userProperties = user
  }
  return p
}

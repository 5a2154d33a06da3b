// The message as the broker and the cluster carry it, independent of any client's protocol
// version. Encoded to PUBLISH packets per outgoing form at delivery time.

export type QoS = 0 | 1 | 2

/** MQTT 5 properties that travel with an application message unchanged [MQTT-3.3.2]. */
export interface MessageProperties {
  payloadFormatIndicator?: boolean
  contentType?: string
  responseTopic?: string
  correlationData?: Buffer
  userProperties?: Record<string, string | string[]>
}

export interface BrokerMessage {
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
  properties?: MessageProperties
  /** absolute expiry (ms since epoch) from Message Expiry Interval; undefined = never */
  expiresAt?: number
  /** ID of the worker that received the PUBLISH from a client */
  origin: string
  /** client ID of the publisher, for no-local across workers */
  publisherId: string
}

// Broker limits, validated once at startup and frozen. Every one is a `ringmq worker` flag.

import { errConfig } from '../errors.js'

export type QueueOverflow = 'drop-oldest' | 'drop-new'

export interface BrokerLimits {
  /** accepted TCP connections at once; more are closed at accept */
  maxConnections: number
  /** seconds; a client asking for more (or 0) gets this as Server Keep Alive (5.0) */
  maxKeepalive: number
  /** incoming QoS 1/2 PUBLISHes unacknowledged at once per client (5.0 Receive Maximum) */
  receiveMaximum: number
  /** largest packet accepted from a client, bytes (5.0 Maximum Packet Size) */
  maxPacketSize: number
  /** messages queued per session (offline, or beyond the client's inflight window) */
  maxQueue: number
  queueOverflow: QueueOverflow
  /** a connection that has not sent CONNECT by then is closed */
  connectTimeoutMs: number
  /** topic aliases a client may use towards the broker (5.0 Topic Alias Maximum) */
  topicAliasMaximum: number
  /** outgoing QoS 1/2 inflight window for 3.1/3.1.1 clients (5.0 clients announce theirs) */
  inflightV4: number
  /** bytes buffered in a socket beyond which QoS 0 messages to that client are dropped */
  maxWriteBuffer: number
}

export const defaultLimits: Readonly<BrokerLimits> = Object.freeze({
  maxConnections: 100_000,
  maxKeepalive: 65535,
  receiveMaximum: 1000,
  maxPacketSize: 1024 * 1024,
  maxQueue: 1000,
  queueOverflow: 'drop-oldest',
  connectTimeoutMs: 10_000,
  topicAliasMaximum: 100,
  inflightV4: 100,
  maxWriteBuffer: 1024 * 1024,
})

export function validateLimits(partial: Partial<BrokerLimits>): Readonly<BrokerLimits> {
  const l: BrokerLimits = { ...defaultLimits }
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (l as unknown as Record<string, unknown>)[k] = v
  const int = (name: keyof BrokerLimits, min: number, max: number): void => {
    const v = l[name] as number
    if (!Number.isInteger(v) || v < min || v > max) throw errConfig(`${name} must be an integer in [${min}, ${max}], got ${v}`)
  }
  int('maxConnections', 1, 10_000_000)
  int('maxKeepalive', 1, 65535)
  int('receiveMaximum', 1, 65535)
  int('maxPacketSize', 64, 268_435_460)
  int('maxQueue', 1, 10_000_000)
  int('connectTimeoutMs', 100, 3_600_000)
  int('topicAliasMaximum', 0, 65535)
  int('inflightV4', 1, 65535)
  int('maxWriteBuffer', 1024, 1 << 30)
  if (l.queueOverflow !== 'drop-oldest' && l.queueOverflow !== 'drop-new') throw errConfig(`queue overflow must be drop-oldest or drop-new, got ${String(l.queueOverflow)}`)
  return Object.freeze(l)
}

// Operational errors with stable codes, so that logs and CLI output can be matched on.

export class RingmqError extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
    this.name = 'RingmqError'
  }
}

export const errConfig = (msg: string) => new RingmqError('ERR_CONFIG', msg)
export const errRingInvalid = (msg: string) => new RingmqError('ERR_RING_INVALID', msg)
export const errRingStale = (msg: string) => new RingmqError('ERR_RING_STALE', msg)
export const errPeerDown = (msg: string) => new RingmqError('ERR_PEER_DOWN', msg)
export const errUnreachable = (msg: string) => new RingmqError('ERR_UNREACHABLE', msg)

/** An MQTT protocol error carrying the reason code the spec asks for. */
export class MqttError extends Error {
  constructor(readonly reasonCode: number, message: string) {
    super(message)
    this.name = 'MqttError'
  }
}

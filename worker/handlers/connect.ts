// CONNECT: validation, ring ownership, cluster claim, take-over, session resume or creation,
// CONNACK. Packets arriving while this runs are held in `conn.pending` and replayed after.
// Standalone (no cluster to ask) the claim is skipped and CONNACK is written in the same turn.
// A clean session (3.1.1 clean session 1, 5.0 Session Expiry 0) never touches the store here.

import { Buffer } from 'node:buffer'
import mqtt, { type IConnectPacket } from 'mqtt-packet'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import { validateTopicName } from '../../src/mqtt/topic.js'
import { ConnState, type Connection } from '../connection.js'
import type { Broker, PendingWill } from '../broker.js'
import { standaloneFabric } from '../fabric.js'
import { NEVER_EXPIRES, Session } from '../session.js'
import { RC, RC4 } from '../reason-codes.js'

// 3.1/3.1.1 CONNACK accepted, session present or not [MQTT-3.2.2-1]; shared, never modified
const CONNACK_NEW = Buffer.from([0x20, 0x02, 0x00, 0x00])
const CONNACK_PRESENT = Buffer.from([0x20, 0x02, 0x01, 0x00])

type ConnectProperties = NonNullable<IConnectPacket['properties']>
const NO_PROPERTIES: Readonly<ConnectProperties> = Object.freeze({})

/** Counts and logs a refused CONNECT, answers CONNACK with the version's code and closes. */
function refuse(conn: Connection, clientId: string, reason: string, rc5: number, rc4: number): void {
  const b = conn.broker
  b.stats.refused[reason] = (b.stats.refused[reason] ?? 0) + 1
  conn.log.info('connect refused', { remote: conn.remote, clientId, reason })
  conn.send(conn.version === 5 ? { cmd: 'connack', sessionPresent: false, reasonCode: rc5 } : { cmd: 'connack', sessionPresent: false, returnCode: rc4 })
  conn.end(`refused_${reason}`)
}

export function handleConnect(conn: Connection, packet: IConnectPacket): void {
  const b = conn.broker
  const version = (packet.protocolVersion ?? 4) as 3 | 4 | 5
  conn.setVersion(version)
  conn.state = ConnState.Connecting
  const props: ConnectProperties = packet.properties ?? NO_PROPERTIES
  let clientId = packet.clientId ?? ''
  let assigned = false

  if (clientId.length === 0) {
    // 3.1.1 allows an empty ID only with clean session [MQTT-3.1.3-7, MQTT-3.1.3-8]
    if (version !== 5 && !packet.clean) return refuse(conn, clientId, 'empty_client_id', RC.ClientIdentifierNotValid, RC4.IdentifierRejected)
    clientId = b.ownership ? b.ownership.assignClientId() : `ringmq-${b.workerId}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
    assigned = true
  } else if (clientId.includes('\u0000') || clientId.includes('\uFFFD')) {
    b.stats.protocolError('bad_client_id')
    return refuse(conn, clientId, 'bad_client_id', RC.ClientIdentifierNotValid, RC4.IdentifierRejected)
  }
  conn.clientId = clientId

  if (b.ownership && !assigned && !b.ownership.owns(clientId)) {
    // a stale router sent this client here: "use another server" so no second live session appears
    return refuse(conn, clientId, 'not_owner', RC.UseAnotherServer, RC4.ServerUnavailable)
  }

  if (version === 5) {
    if (props.receiveMaximum === 0 || props.maximumPacketSize === 0) {
      b.stats.protocolError('bad_connect_properties')
      return refuse(conn, clientId, 'bad_connect_properties', RC.ProtocolError, RC4.IdentifierRejected)
    }
    if (props.authenticationMethod !== undefined) {
      // no enhanced authentication is offered
      return refuse(conn, clientId, 'bad_authentication_method', 0x8c, RC4.IdentifierRejected)
    }
  }

  let will: PendingWill | null = null
  if (packet.will) {
    const w = packet.will
    const bad = validateTopicName(w.topic)
    if (bad) {
      b.stats.protocolError('bad_will_topic')
      return refuse(conn, clientId, 'bad_will_topic', RC.TopicNameInvalid, RC4.IdentifierRejected)
    }
    const wp = w.properties
    const message: BrokerMessage = {
      topic: w.topic,
      payload: typeof w.payload === 'string' ? Buffer.from(w.payload) : w.payload ?? Buffer.alloc(0),
      qos: w.qos ?? 0,
      retain: w.retain ?? false,
      origin: b.workerId,
      publisherId: clientId,
    }
    if (wp) {
      const mp: NonNullable<BrokerMessage['properties']> = {}
      if (wp.payloadFormatIndicator !== undefined) mp.payloadFormatIndicator = wp.payloadFormatIndicator
      if (wp.contentType !== undefined) mp.contentType = wp.contentType
      if (wp.responseTopic !== undefined) mp.responseTopic = wp.responseTopic
      if (wp.correlationData !== undefined) mp.correlationData = wp.correlationData
      if (wp.userProperties !== undefined) mp.userProperties = wp.userProperties
      if (Object.keys(mp).length > 0) message.properties = mp
    }
    will = { message, delayInterval: version === 5 ? wp?.willDelayInterval ?? 0 : 0 }
    if (wp?.messageExpiryInterval !== undefined) will.expiryInterval = wp.messageExpiryInterval
  }

  const expiryInterval = version === 5 ? props.sessionExpiryInterval ?? 0 : packet.clean ? 0 : NEVER_EXPIRES
  const clean = packet.clean ?? true

  const params: ConnectParams = { clientId, assigned, clean, expiryInterval, will, keepalive: packet.keepalive ?? 0, props }
  // standalone there is no other worker that could hold this client's session
  if (b.fabric === standaloneFabric) return finishConnect(conn, params)
  b.fabric.claimSession(clientId).then(
    () => finishConnect(conn, params),
    (err: Error) => {
      conn.log.warn('session claim failed', { clientId, err })
      refuse(conn, clientId, 'claim_failed', RC.ServerBusy, RC4.ServerUnavailable)
    },
  )
}

interface ConnectParams {
  clientId: string
  assigned: boolean
  clean: boolean
  expiryInterval: number
  will: PendingWill | null
  keepalive: number
  props: ConnectProperties
}

/**
 * The 5.0 CONNACK without Assigned Client Identifier and Server Keep Alive depends only on the
 * broker's limits: encoded once per broker, [session not present, session present].
 */
const connackV5 = new WeakMap<Broker, [Buffer, Buffer]>()

function v5ConnackProperties(b: Broker): Record<string, unknown> {
  return {
    receiveMaximum: b.limits.receiveMaximum,
    maximumPacketSize: b.limits.maxPacketSize,
    topicAliasMaximum: b.limits.topicAliasMaximum,
    retainAvailable: true,
    wildcardSubscriptionAvailable: true,
    subscriptionIdentifiersAvailable: true,
    sharedSubscriptionAvailable: true,
  }
}

function plainV5Connack(b: Broker, sessionPresent: boolean): Buffer {
  let pair = connackV5.get(b)
  if (pair === undefined) {
    const gen = (present: boolean): Buffer =>
      mqtt.generate({ cmd: 'connack', sessionPresent: present, reasonCode: 0, properties: v5ConnackProperties(b) }, { protocolVersion: 5 })
    pair = [gen(false), gen(true)]
    connackV5.set(b, pair)
  }
  return pair[sessionPresent ? 1 : 0]
}

function finishConnect(conn: Connection, p: ConnectParams): void {
  if (conn.state !== ConnState.Connecting) return
  const b = conn.broker
  const version = conn.version
  let session = b.sessions.get(p.clientId)

  if (session?.conn) {
    // take-over: the existing connection ends [MQTT-3.1.4-3]; 5.0 tells it why
    const old = session.conn
    const oldWill = old.will
    old.session = null
    old.will = null
    session.conn = null
    old.sendDisconnect(RC.SessionTakenOver)
    old.end('session_taken_over')
    // the old connection's will goes out unless the session continues with a delayed will [MQTT-3.1.3-9]
    if (oldWill && (p.clean || oldWill.delayInterval === 0)) b.publishWillNow(p.clientId, oldWill)
  }

  let sessionPresent = false
  if (session && p.clean) {
    // clean start discards any existing session [MQTT-3.1.2-4]
    b.destroySession(session)
    session = undefined
  }
  if (session) {
    sessionPresent = true
    // reconnecting before a delayed will is due cancels it [MQTT-3.1.3-9]
    b.sessionOnline(session)
  } else {
    session = new Session(b, p.clientId)
    b.sessions.set(p.clientId, session)
  }
  session.expiryInterval = p.expiryInterval
  session.protocolVersion = version
  if (session.persistent || session.stored) void b.persistSession(session)

  // limits announced by the client
  const props = p.props
  conn.sendQuota = version === 5 ? props.receiveMaximum ?? 65535 : b.limits.inflightV4
  conn.maxOutPacket = version === 5 ? props.maximumPacketSize ?? Infinity : Infinity
  conn.aliasOutMax = version === 5 ? props.topicAliasMaximum ?? 0 : 0
  conn.will = p.will

  let keepalive = p.keepalive
  let serverKeepAlive: number | undefined
  if (version === 5 && (keepalive === 0 || keepalive > b.limits.maxKeepalive) && b.limits.maxKeepalive < 65535) {
    // the server's maximum wins and is announced as Server Keep Alive [MQTT-3.2.2-21]
    keepalive = b.limits.maxKeepalive
    serverKeepAlive = keepalive
  }

  if (version === 5) {
    const plain = !p.assigned && serverKeepAlive === undefined ? plainV5Connack(b, sessionPresent) : null
    if (plain !== null && plain.length <= conn.maxOutPacket) {
      conn.write(plain)
      conn.countOut('connack')
    } else {
      const ack = v5ConnackProperties(b)
      if (p.assigned) ack.assignedClientIdentifier = p.clientId
      if (serverKeepAlive !== undefined) ack.serverKeepAlive = serverKeepAlive
      conn.send({ cmd: 'connack', sessionPresent, reasonCode: 0, properties: ack })
    }
  } else {
    conn.write(sessionPresent ? CONNACK_PRESENT : CONNACK_NEW)
    conn.countOut('connack')
  }

  conn.state = ConnState.Connected
  conn.session = session
  session.conn = conn
  conn.startKeepalive(keepalive)
  // resend unacknowledged messages of a present session, then the queue [MQTT-4.4.0-1]
  if (sessionPresent) session.resume()
  else session.drain()

  const pending = conn.pending
  if (pending === null) return
  conn.pending = null
  for (const pkt of pending) {
    if (conn.state !== ConnState.Connected) break
    conn.dispatch(pkt)
  }
}

// PUBACK, PUBREC, PUBREL, PUBCOMP: the acknowledgement side of QoS 1 and QoS 2, both directions.
//
//  broker -> client (outgoing):  PUBLISH ─> PUBACK                       (QoS 1)
//                                PUBLISH ─> PUBREC ─> PUBREL ─> PUBCOMP  (QoS 2)
//  client -> broker (incoming):  PUBREL ─> PUBCOMP closes the incoming QoS 2 flow

import type { IPubackPacket, IPubcompPacket, IPubrecPacket, IPubrelPacket } from 'mqtt-packet'
import type { Connection } from '../connection.js'
import { RC } from '../reason-codes.js'

const PUBCOMP = 0x70

function unknownId(conn: Connection, type: string, id: number): void {
  conn.broker.stats.protocolError('unknown_packet_id')
  conn.log.debug('acknowledgement for an unknown packet ID', { type, packetId: id })
}

export function handlePuback(conn: Connection, packet: IPubackPacket): void {
  const id = packet.messageId ?? 0
  if (!conn.session!.acknowledged(id, 'publish', 1)) unknownId(conn, 'puback', id)
}

export function handlePubrec(conn: Connection, packet: IPubrecPacket): void {
  const id = packet.messageId ?? 0
  const session = conn.session!
  if ((packet.reasonCode ?? 0) >= 0x80) {
    // an error PUBREC ends the flow; no PUBREL follows [MQTT-4.3.3]
    session.abandon(id)
    return
  }
  const stored = session.received(id)
  if (stored === undefined) conn.sendPubrel(id)
  else if (stored !== false) {
    // PUBREL only once the PUBREL state is durable: after a restart the flow must resume with
    // PUBREL, never with the PUBLISH again [MQTT-4.3.3-1]
    stored.then(
      () => conn.sendPubrel(id),
      (err: Error) => {
        conn.log.error('PUBREL state not stored', { packetId: id, err })
        conn.end('commit_failed')
      },
    )
  } else {
    unknownId(conn, 'pubrec', id)
    if (conn.version === 5) conn.send({ cmd: 'pubrel', messageId: id, reasonCode: RC.PacketIdentifierNotFound })
    else conn.sendPubrel(id)
  }
}

export function handlePubrel(conn: Connection, packet: IPubrelPacket): void {
  const id = packet.messageId ?? 0
  const session = conn.session!
  const b = conn.broker
  const known = session.incomingQos2.delete(id)
  const stored = session.persistent && b.store.hasIncomingQos2(conn.clientId, id)
  if (known || stored) {
    if (known && conn.unacked > 0) conn.unacked--
    if (!stored) conn.sendAck(PUBCOMP, id)
    else {
      // PUBCOMP once the record is gone: after a crash a new PUBLISH reusing this ID must not
      // be taken for a resend of the completed one [MQTT-4.3.3-2]
      b.store.deleteIncomingQos2(conn.clientId, id).then(
        () => conn.sendAck(PUBCOMP, id),
        (err: Error) => {
          conn.log.error('QoS 2 completion not stored', { packetId: id, err })
          conn.end('commit_failed')
        },
      )
    }
    return
  }
  // PUBREL for an ID we do not hold (e.g. resent after our PUBCOMP was lost) [MQTT-4.3.3-12]
  unknownId(conn, 'pubrel', id)
  conn.sendAck(PUBCOMP, id, RC.PacketIdentifierNotFound)
}

export function handlePubcomp(conn: Connection, packet: IPubcompPacket): void {
  const id = packet.messageId ?? 0
  if (!conn.session!.acknowledged(id, 'pubrel', 2)) unknownId(conn, 'pubcomp', id)
}

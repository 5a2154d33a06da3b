// DISCONNECT from the client: a normal disconnect discards the will [MQTT-3.14.4-3] unless
// 5.0 reason 0x04 asks for it; 5.0 may update the session expiry on the way out.

import type { IDisconnectPacket } from 'mqtt-packet'
import type { Connection } from '../connection.js'
import { RC } from '../reason-codes.js'

export function handleDisconnect(conn: Connection, packet: IDisconnectPacket): void {
  const session = conn.session!
  const expiry = packet.properties?.sessionExpiryInterval
  if (expiry !== undefined) {
    // a session that was to end with the connection cannot be made persistent here [MQTT-3.14.2-2]
    if (session.expiryInterval === 0 && expiry !== 0) return conn.protocolError('session_expiry_on_disconnect', RC.ProtocolError)
    session.expiryInterval = expiry
  }
  if (packet.reasonCode !== RC.DisconnectWithWill) conn.will = null
  conn.end('client_disconnect')
}

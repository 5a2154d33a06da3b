// Setting up the generator's MQTT clients: where each role connects and under which client
// ID. A ringmq worker refuses client IDs it does not own ("use another server"); the
// generator then simply tries the next candidate ID, so the same code drives a single
// broker, a router or a specific worker of a cluster.

import { ConnectRefused, isUseAnotherServer, MqttConn, type Endpoint } from './mqtt-conn.js'
import type { ProtocolVersion } from './publish-frame.js'

export type Role = 'pub' | 'sub' | 'idle'

export interface ClientPlacement {
  /** where client `index` of `role` connects */
  endpoint(role: Role, index: number): Endpoint
}

const MAX_ID_ATTEMPTS = 64

export function candidateId(prefix: string, role: Role, index: number, attempt: number): string {
  return attempt === 0 ? `${prefix}-${role}${index}` : `${prefix}-${role}${index}-${attempt}`
}

export async function connectClient(
  placement: ClientPlacement,
  role: Role,
  index: number,
  protocol: ProtocolVersion,
  prefix: string,
): Promise<MqttConn> {
  let lastErr: Error | null = null
  for (let attempt = 0; attempt < MAX_ID_ATTEMPTS; attempt++) {
    const conn = await MqttConn.open(placement.endpoint(role, index), protocol)
    try {
      await conn.connect(candidateId(prefix, role, index, attempt))
      return conn
    } catch (err) {
      conn.socket.destroy()
      if (err instanceof ConnectRefused && isUseAnotherServer(err.returnCode, protocol)) {
        lastErr = err
        continue
      }
      throw err
    }
  }
  throw new Error(`no client ID accepted for ${role}${index} after ${MAX_ID_ATTEMPTS} attempts: ${lastErr?.message}`)
}

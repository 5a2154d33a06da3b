// The ringmq worker as a conformance target: `ringmq worker` standalone (no ring: it owns every
// client) on an ephemeral port with its own LMDB directory and a metrics listener.

import { startRingmq, splitHostPort, tmpDir, type RunningProcess } from '../../helpers/process.js'
import { TARGET_CAPS, type Target, type TargetLimits } from '../target.js'

function limitArgs(limits: TargetLimits): string[] {
  const args: string[] = []
  if (limits.maxKeepalive !== undefined) args.push('--max-keepalive', String(limits.maxKeepalive))
  if (limits.receiveMaximum !== undefined) args.push('--receive-maximum', String(limits.receiveMaximum))
  if (limits.maxPacketSize !== undefined) args.push('--max-packet-size', String(limits.maxPacketSize))
  if (limits.connectTimeoutMs !== undefined) args.push('--connect-timeout-ms', String(limits.connectTimeoutMs))
  if (limits.maxConnections !== undefined) args.push('--max-connections', String(limits.maxConnections))
  return args
}

export async function startRingmqTarget(limits: TargetLimits): Promise<Target> {
  const data = tmpDir('conformance-ringmq-')
  const id = `conf-${process.pid}`
  const start = (mqtt: string, metrics: string): Promise<RunningProcess> =>
    startRingmq(['worker', '--id', id, '--mqtt', mqtt, '--data', data, '--metrics', metrics, ...limitArgs(limits)])
  let proc = await start('127.0.0.1:0', '127.0.0.1:0')
  const { host, port } = splitHostPort(String(proc.ready.mqtt))
  const metrics = String(proc.ready.metrics)
  return {
    kind: 'ringmq',
    host,
    port,
    metricsUrl: `http://${metrics}/metrics`,
    caps: TARGET_CAPS.ringmq,
    async restart() {
      await proc.stop()
      proc = await start(`${host}:${port}`, metrics)
    },
    async kill9AndRestart() {
      await proc.kill9()
      proc = await start(`${host}:${port}`, metrics)
    },
    async stop() {
      await proc.stop()
    },
  }
}

// HAProxy 2.6 in TCP mode in front of Mosquitto, routing by MQTT client identifier on a
// consistent-hash ring: the off-the-shelf way to do what ringmq's router does.
//
// `balance hash req.payload(...)` is not usable here: in TCP mode the payload is not there
// yet when the server is chosen and HAProxy silently falls back to round robin. The client ID
// is therefore captured into a variable by a content rule (which waits, up to inspect-delay,
// for a whole CONNECT) and the backend hashes that variable.
// Both processes share the server core, like ringmq's router and worker do.

import fs from 'node:fs'
import path from 'node:path'
import { freePorts, startServer, type ServerProcess } from './server-process.js'
import { startMosquitto, MOSQUITTO } from './mosquitto.js'
import { missingFile, stopAllOf, type RunningTarget, type StartContext, type TargetDef } from './target.js'

export const HAPROXY = process.env.BENCH_HAPROXY ?? '/usr/sbin/haproxy'

export function haproxyConfig(port: number, backends: number[]): string {
  return [
    'global',
    // fds: two per proxied connection; the bench keeps idle counts below this
    '  maxconn 9900',
    '  nbthread 1',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 1h',
    '  timeout server 1h',
    'frontend mqtt',
    `  bind 127.0.0.1:${port}`,
    '  tcp-request inspect-delay 5s',
    '  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }',
    '  tcp-request content set-var(txn.client_id) req.payload(0,0),mqtt_field_value(connect,client_identifier)',
    '  default_backend brokers',
    'backend brokers',
    '  balance hash var(txn.client_id)',
    '  hash-type consistent',
    ...backends.map((p, i) => `  server m${i + 1} 127.0.0.1:${p}`),
    '',
  ].join('\n')
}

export async function startHaproxy(ctx: StartContext, backends: number[]): Promise<{ proc: ServerProcess; port: number }> {
  const [port] = await freePorts(1)
  const cfg = path.join(ctx.dir, 'haproxy.cfg')
  fs.writeFileSync(cfg, haproxyConfig(port!, backends))
  // -db: foreground, no daemon; a single process so its PID is the one to measure
  const proc = await startServer({ name: 'haproxy', cmd: HAPROXY, args: ['-db', '-f', cfg], cpu: ctx.serverCpu, readyPort: port! })
  return { proc, port: port! }
}

export const haproxyTarget: TargetDef = {
  id: 'haproxy',
  label: 'HAProxy 2.6 -> Mosquitto',
  idle: true,
  jit: false,
  protocols: [4, 5],
  async probe() {
    return missingFile(HAPROXY, 'haproxy (apt install haproxy)') ?? missingFile(MOSQUITTO, 'mosquitto (apt install mosquitto)')
  },
  async start(ctx): Promise<RunningTarget> {
    const m = await startMosquitto(ctx)
    let h: { proc: ServerProcess; port: number }
    try {
      h = await startHaproxy(ctx, [m.port])
    } catch (err) {
      await m.proc.stop()
      throw err
    }
    return {
      placement: { endpoint: () => ({ host: '127.0.0.1', port: h.port }) },
      groups: { total: [h.proc, m.proc], own: [h.proc] },
      stop: () => stopAllOf([h.proc, m.proc]),
    }
  },
}

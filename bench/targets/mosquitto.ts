// Mosquitto (Debian package) with its own minimal config: no persistence, TCP_NODELAY, as
// the issue prescribes; everything else at its defaults.

import fs from 'node:fs'
import path from 'node:path'
import { freePorts, startServer, type ServerProcess } from './server-process.js'
import { missingFile, type RunningTarget, type StartContext, type TargetDef } from './target.js'

export const MOSQUITTO = process.env.BENCH_MOSQUITTO ?? '/usr/sbin/mosquitto'

export async function startMosquitto(ctx: StartContext, name = 'mosquitto'): Promise<{ proc: ServerProcess; port: number }> {
  const [port] = await freePorts(1)
  const conf = path.join(ctx.dir, `${name}.conf`)
  fs.writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  )
  const proc = await startServer({ name, cmd: MOSQUITTO, args: ['-c', conf], cpu: ctx.serverCpu, readyPort: port! })
  return { proc, port: port! }
}

export const mosquittoTarget: TargetDef = {
  id: 'mosquitto',
  label: 'Mosquitto (Debian)',
  idle: true,
  jit: false,
  protocols: [4, 5],
  async probe() {
    return missingFile(MOSQUITTO, 'mosquitto (apt install mosquitto)')
  },
  async start(ctx): Promise<RunningTarget> {
    const { proc, port } = await startMosquitto(ctx)
    return {
      placement: { endpoint: () => ({ host: '127.0.0.1', port }) },
      groups: { total: [proc] },
      stop: () => proc.stop(),
    }
  },
}

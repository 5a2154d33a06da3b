// Aedes (npm devDependency) behind a few-line net server, see bench/servers/aedes-server.ts.

import fs from 'node:fs'
import { startServer } from './server-process.js'
import { distPath, hostPort, type RunningTarget, type TargetDef } from './target.js'

const SERVER = distPath('bench/servers/aedes-server.js')

export const aedesTarget: TargetDef = {
  id: 'aedes',
  label: 'Aedes (Node)',
  idle: true,
  jit: true,
  // Aedes 1.x answers an MQTT 5.0 CONNECT with return code 1 (unacceptable protocol version)
  protocols: [4],
  async probe() {
    if (!fs.existsSync(SERVER)) return `${SERVER} not built (npm run build)`
    try {
      await import('aedes')
      return null
    } catch {
      return 'npm package aedes not installed (npm install)'
    }
  },
  async start(ctx): Promise<RunningTarget> {
    const proc = await startServer({ name: 'aedes', cmd: process.execPath, args: [...(ctx.nodeArgs ?? []), SERVER, '0'], cpu: ctx.serverCpu, readyLine: true })
    const ep = hostPort(String(proc.ready.mqtt))
    return { placement: { endpoint: () => ep }, groups: { total: [proc] }, stop: () => proc.stop() }
  },
}

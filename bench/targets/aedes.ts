// Aedes (npm devDependency) behind a few-line net server, see bench/servers/aedes-server.ts.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startServer } from './server-process.js'
import { hostPort, type RunningTarget, type TargetDef } from './target.js'

const SERVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../servers/aedes-server.js')

export const aedesTarget: TargetDef = {
  id: 'aedes',
  label: 'Aedes (Node)',
  idle: true,
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
    const proc = await startServer({ name: 'aedes', cmd: process.execPath, args: [SERVER, '0'], cpu: ctx.serverCpu, readyLine: true })
    const ep = hostPort(String(proc.ready.mqtt))
    return { placement: { endpoint: () => ep }, groups: { total: [proc] }, stop: () => proc.stop() }
  },
}

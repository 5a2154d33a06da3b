// Debian's Mosquitto as a conformance target: the independent reference broker the cases are
// validated against. A temporary config per target, persistence off, anonymous access,
// loopback only. Mosquitto 2.0 cannot listen on port 0, so a free port is reserved first and
// the start is retried if another process grabs it in between.

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { freePorts, tmpDir } from '../../helpers/process.js'
import { TARGET_CAPS, type Target, type TargetLimits } from '../target.js'

const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto'

// Safety net: a broker whose start outlived a timed-out hook is still killed when the test
// worker exits (by PID, synchronously).
const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

function config(port: number, limits: TargetLimits, dir: string): string {
  const lines = [
    `listener ${port} 127.0.0.1`,
    // listener options directly after their listener line
    ...(limits.maxConnections !== undefined ? [`max_connections ${limits.maxConnections}`] : []),
    'allow_anonymous true',
    ...(limits.persistent ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
  ]
  if (limits.maxKeepalive !== undefined) lines.push(`max_keepalive ${limits.maxKeepalive}`)
  if (limits.maxPacketSize !== undefined) lines.push(`max_packet_size ${limits.maxPacketSize}`)
  // Mosquitto announces max_inflight_messages as its Receive Maximum and enforces it on
  // incoming QoS 1/2 as well (DISCONNECT 0x93).
  if (limits.receiveMaximum !== undefined) lines.push(`max_inflight_messages ${limits.receiveMaximum}`)
  return lines.join('\n') + '\n'
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => (s.destroy(), resolve(true)))
    s.once('error', () => resolve(false))
  })
}

async function startOnce(port: number, limits: TargetLimits, dir: string): Promise<ChildProcess> {
  const conf = path.join(dir, 'mosquitto.conf')
  fs.writeFileSync(conf, config(port, limits, dir))
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  let exited = false
  child.once('exit', () => (exited = true))
  // Mosquitto block-buffers its log on a pipe, so readiness is polled: the listener accepts.
  const deadline = Date.now() + 15000
  while (Date.now() < deadline) {
    if (exited) throw new Error(`mosquitto exited: ${err.slice(-2000)}`)
    if (await canConnect(port)) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`mosquitto not listening on ${port}: ${err.slice(-2000)}`)
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill(signal)
    setTimeout(() => child.kill('SIGKILL'), 5000).unref()
  })
}

export async function startMosquittoTarget(limits: TargetLimits): Promise<Target> {
  const dir = tmpDir('conformance-mosquitto-')
  // started as root, Mosquitto drops to the `mosquitto` user, which must write its database here
  fs.chmodSync(dir, 0o777)
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const [port] = await freePorts(1)
    try {
      let child = await startOnce(port!, limits, dir)
      const again = async (signal: NodeJS.Signals): Promise<void> => {
        await stopChild(child, signal)
        child = await startOnce(port!, limits, dir)
      }
      return {
        kind: 'mosquitto',
        host: '127.0.0.1',
        port: port!,
        caps: TARGET_CAPS.mosquitto,
        restart: () => again('SIGTERM'),
        kill9AndRestart: () => again('SIGKILL'),
        stop: () => stopChild(child),
      }
    } catch (err) {
      lastError = err
    }
  }
  throw lastError
}

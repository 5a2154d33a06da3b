// Starting and stopping the server processes of a bench target, pinned to the server core.
// Every process started here is stopped by its PID (SIGTERM, then SIGKILL after a grace).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import { createInterface } from 'node:readline'

export interface ServerProcess {
  readonly name: string
  readonly pid: number
  /** the parsed JSON "ready" line, when the process prints one */
  readonly ready: Record<string, unknown>
  stop(): Promise<void>
  /**
   * Why the process ended, once it has: its exit code or signal and what it said last (the
   * error line of a crashing Node server, else its last line of output). Waits up to `waitMs` for the
   * exit to be reported; null if it is still running then.
   */
  exitReason(waitMs?: number): Promise<string | null>
}

export interface SpawnOptions {
  name: string
  cmd: string
  args: string[]
  /** CPU to pin to with taskset; undefined = not pinned */
  cpu?: number
  /** wait for a JSON log line with msg "ready" (ringmq contract) */
  readyLine?: boolean
  /** or wait until this TCP port accepts connections */
  readyPort?: number
  readyTimeoutMs?: number
}

const live = new Set<ChildProcess>()

let tasksetChecked: boolean | null = null
export function hasTaskset(): boolean {
  if (tasksetChecked === null) tasksetChecked = spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0
  return tasksetChecked
}

export async function startServer(o: SpawnOptions): Promise<ServerProcess> {
  // taskset execs the command, so the child's PID is the server's PID
  const [cmd, args] = o.cpu !== undefined && hasTaskset() ? ['taskset', ['-c', String(o.cpu), o.cmd, ...o.args]] : [o.cmd, o.args]
  const child = spawn(cmd as string, args as string[], { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  let tail = ''
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-4000)
  }
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    live.delete(child)
    resolve()
  }))
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const t = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(t)
  }
  const timeoutMs = o.readyTimeoutMs ?? 20_000
  try {
    let ready: Record<string, unknown> = {}
    if (o.readyLine) {
      ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ready line within ${timeoutMs} ms`)), timeoutMs)
        child.once('exit', (code, sig) => {
          clearTimeout(t)
          reject(new Error(`exited (${code ?? sig}) before ready`))
        })
        createInterface({ input: child.stdout! }).on('line', (line) => {
          keep(Buffer.from(line + '\n'))
          let rec: Record<string, unknown>
          try {
            rec = JSON.parse(line)
          } catch {
            return
          }
          if (rec.msg === 'ready') {
            clearTimeout(t)
            resolve(rec)
          }
        })
      })
    } else {
      child.stdout!.on('data', keep)
      if (o.readyPort !== undefined) await waitForPort(o.readyPort, timeoutMs, () => child.exitCode !== null || child.signalCode !== null)
    }
    child.stdout!.resume()
    const exitReason = async (waitMs = 1000): Promise<string | null> => {
      let t: NodeJS.Timeout | undefined
      await Promise.race([exited, new Promise((r) => (t = setTimeout(r, waitMs)))])
      clearTimeout(t)
      if (child.exitCode === null && child.signalCode === null) return null
      const how = child.signalCode !== null ? `signal ${child.signalCode}` : `exit code ${child.exitCode}`
      // the error a crashing Node process printed, not the version line under its stack
      const lines = tail.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^Node\.js v\d/.test(l))
      const said = [...lines].reverse().find((l) => /^(\w*Error\b|FATAL ERROR)/.test(l)) ?? lines.at(-1)
      return said ? `${how}: ${said.slice(0, 300)}` : how
    }
    return { name: o.name, pid: child.pid!, ready, stop, exitReason }
  } catch (err) {
    await stop()
    throw new Error(`${o.name}: ${(err as Error).message}${tail ? `; output: ${tail.trim().slice(-600)}` : ''}`)
  }
}

export async function waitForPort(port: number, timeoutMs: number, dead: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (dead()) throw new Error('exited before listening')
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`port ${port} not listening within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * Free loopback ports for servers that must be told their port (Mosquitto, HAProxy, `--port`).
 * Picked below the kernel's ephemeral range: a port from listen(0) is an ephemeral one, and once
 * released any outgoing connection on the machine (thousands, in a bench or a test run) may take
 * it as its source port before the server binds it (EADDRINUSE). Each is checked free by binding
 * it; two callers picking the same one at the same moment remains possible, and unlikely.
 */
export async function freePorts(n: number): Promise<number[]> {
  const low = 10_000
  const high = ephemeralLow() - 1
  const ports: number[] = []
  for (let tries = 0; ports.length < n; tries++) {
    if (tries >= 200) throw new Error(`no free port in ${low}-${high} after 200 tries`)
    const port = low + Math.floor(Math.random() * (high - low + 1))
    if (ports.includes(port)) continue
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer()
      s.once('error', () => resolve(false))
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
    })
    if (free) ports.push(port)
  }
  return ports
}

/** First port of the kernel's ephemeral range (Linux; 32768 elsewhere or if unreadable). */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isInteger(low) && low > 11_000 ? low : 32_768
  } catch {
    return 32_768
  }
}

/** Last-resort cleanup (process exit): kill whatever this module started and is still alive. */
export function killAllStarted(): void {
  for (const c of live) c.kill('SIGKILL')
}

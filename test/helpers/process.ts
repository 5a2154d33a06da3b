// Starts real ringmq processes (built `dist/`) on loopback and waits for their "ready" log line.
// Every process started here is killed by PID in `stopAll()`; call it from afterAll/afterEach.

import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const CLI = path.join(ROOT, 'dist/src/cli/main.js')

export interface ReadyInfo {
  [key: string]: unknown
  mqtt?: string
  peer?: string
  admin?: string
  metrics?: string
}

export interface RunningProcess {
  child: ChildProcess
  pid: number
  ready: ReadyInfo
  /** every JSON log line seen so far */
  logs: Record<string, unknown>[]
  /** resolves with the first log line matching `pred` (already seen or future) */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  /** SIGTERM and wait for exit */
  stop(): Promise<number | null>
  /** SIGKILL and wait for exit */
  kill9(): Promise<void>
  exited: Promise<number | null>
}

const running = new Set<RunningProcess>()

export function startRingmq(args: string[], opts: { env?: NodeJS.ProcessEnv; readyTimeoutMs?: number } = {}): Promise<RunningProcess> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Record<string, unknown>[] = []
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = []
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
    if (stderr.length > 20000) stderr = stderr.slice(-20000)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let rec: Record<string, unknown>
    try {
      rec = JSON.parse(line)
    } catch {
      return
    }
    logs.push(rec)
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pred(rec)) {
        waiters[i]!.resolve(rec)
        waiters.splice(i, 1)
      }
    }
  })
  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15000) => {
    const seen = logs.find(pred)
    if (seen) return Promise.resolve(seen)
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for log line; stderr: ${stderr.slice(-2000)}`)), timeoutMs)
      waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) })
      exited.then((code) => reject(new Error(`process exited (${code}) before log line; stderr: ${stderr.slice(-2000)}`)))
    })
  }
  const proc: RunningProcess = {
    child,
    pid: child.pid!,
    ready: {},
    logs,
    waitForLog,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 10000)
      const code = await exited
      clearTimeout(t)
      running.delete(proc)
      return code
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
      running.delete(proc)
    },
  }
  running.add(proc)
  return waitForLog((l) => l.msg === 'ready', opts.readyTimeoutMs ?? 20000).then((l) => {
    proc.ready = l as ReadyInfo
    return proc
  })
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()))
}

/** A fresh temporary directory, removed by `cleanupTmp()`. */
const tmpDirs: string[] = []
export function tmpDir(prefix = 'ringmq-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  tmpDirs.push(d)
  return d
}
export function cleanupTmp(): void {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
}

/** Reserves free loopback ports (for ring specs that must name addresses up front); shared with bench/. */
export { freePorts } from '../../bench/targets/server-process.js'

export function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':')
  return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) }
}

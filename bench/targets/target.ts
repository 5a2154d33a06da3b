// A bench target: a system under test the generator can drive. `probe` says, without starting
// anything long-lived, whether it can run here (and why not); `start` brings it up on
// loopback, pinned to the server core, and says where each client role connects and which
// processes to measure.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ClientPlacement } from '../gen/clients.js'
import type { ServerProcess } from './server-process.js'

export interface StartContext {
  /** a fresh directory for configs and data, removed by the runner */
  dir: string
  /** CPU for the server processes, undefined = unpinned */
  serverCpu?: number
  /** extra flags for Node server processes (e.g. --cpu-prof) */
  nodeArgs?: string[]
}

/**
 * Process groups whose CPU and memory are read: `total` is every process serving the
 * target; `own` (proxies only) is the proxy alone, i.e. its own cost on top of the broker.
 */
export type ProcessGroups = { total: ServerProcess[]; own?: ServerProcess[] }

export interface RunningTarget {
  placement: ClientPlacement
  groups: ProcessGroups
  stop(): Promise<void>
}

export interface TargetDef {
  /** short id used in tables and flags, e.g. "mosquitto" */
  id: string
  /** what it is, for the report */
  label: string
  /** scenario kinds this target takes part in (the cluster is not an idle-connection target) */
  idle: boolean
  /**
   * served by Node: V8 compiles its hot paths during the first seconds of load, so it gets an
   * unmeasured warm-up load before its first scenario (scenarios.ts, targetWarmup)
   */
  jit: boolean
  /** MQTT protocol levels it speaks; scenarios at other levels are reported as not run */
  protocols: readonly (4 | 5)[]
  /** null when runnable, else the reason it is skipped */
  probe(): Promise<string | null>
  start(ctx: StartContext): Promise<RunningTarget>
}

export function missingFile(path: string, what: string): string | null {
  try {
    fs.accessSync(path, fs.constants.X_OK)
    return null
  } catch {
    return `${what} not found at ${path}`
  }
}

export function stopAllOf(procs: ServerProcess[]): Promise<void> {
  // proxies first would drop client connections before brokers; order does not matter for a bench
  return Promise.all(procs.map((p) => p.stop())).then(() => undefined)
}

export function hostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':')
  return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) }
}

/** A built file under dist/, whether this module runs from dist/ (npm run bench) or from source (vitest). */
export function distPath(rel: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir)
  return path.join(dir, 'dist', rel)
}

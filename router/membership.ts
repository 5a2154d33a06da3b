// What the router knows about the cluster: the ring (Placement) and which workers it believes
// alive. Liveness comes from periodic TCP-connect probes to each worker's MQTT listener (the
// address the router needs to reach) and from failed connects on the routing path (refused:
// down at once; timed out: down unless other connects to it are succeeding); a worker is back
// as soon as a probe or a connect succeeds. Every worker starts out presumed alive so
// that a fresh router routes at once. Nothing here needs to survive a restart.

import { Buffer } from 'node:buffer'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { parseHostPort, type HostPort } from '../src/config/flags.js'
import type { Logger } from '../src/log.js'
import { Placement } from '../src/ring/placement.js'
import type { RingSpec, RingWorker } from '../src/ring/spec.js'
import { connectWorker, type WorkerRead } from './worker-socket.js'

/** A probe closes at connect: whatever a worker might send is dropped. */
const PROBE_READ: WorkerRead = { buffer: Buffer.allocUnsafe(512), callback: () => true }

export class Membership {
  #placement: Placement
  #down = new Set<string>()
  /** when a connect to each worker last succeeded (performance.now ms) */
  #lastOk = new Map<string, number>()
  #addresses = new Map<string, HostPort>()
  #log: Logger
  #probeTimer: NodeJS.Timeout | undefined
  #probing = new Set<net.Socket>()
  #next = 0

  constructor(spec: RingSpec, log: Logger) {
    this.#log = log
    this.#placement = new Placement(spec)
    this.#index(spec)
  }

  get placement(): Placement {
    return this.#placement
  }

  /** For Placement.owner: bound once, no closure per call. */
  readonly isAlive = (workerId: string): boolean => !this.#down.has(workerId)

  address(workerId: string): HostPort {
    return this.#addresses.get(workerId)!
  }

  markDown(workerId: string, why: string): void {
    if (this.#down.has(workerId) || !this.#addresses.has(workerId)) return
    this.#down.add(workerId)
    this.#log.warn('worker down', { worker: workerId, why })
  }

  markUp(workerId: string): void {
    this.#lastOk.set(workerId, performance.now())
    if (!this.#down.delete(workerId)) return
    this.#log.info('worker up', { worker: workerId })
  }

  /**
   * A connect timed out. That alone does not prove the worker gone: in a reconnect storm a
   * worker's full listen backlog drops SYNs (resent after a second) while it accepts plenty of
   * others. So the worker is marked down only if no connect to it succeeded within `windowMs`;
   * a dead or unreachable host has no successes and goes down on its first timeout.
   */
  timedOut(workerId: string, windowMs: number): void {
    const ok = this.#lastOk.get(workerId)
    if (ok !== undefined && performance.now() - ok < windowMs) return
    this.markDown(workerId, 'connect timeout')
  }

  /** Any active worker believed alive, round-robin (for clients with an empty client ID). */
  anyAlive(): RingWorker | undefined {
    const workers = this.#placement.spec.workers
    for (let i = 0; i < workers.length; i++) {
      const w = workers[(this.#next + i) % workers.length]!
      if (w.state === 'active' && !this.#down.has(w.id)) {
        this.#next = (this.#next + i + 1) % workers.length
        return w
      }
    }
    return undefined
  }

  /** Adopts a newer spec; liveness of workers that stay is kept. */
  setSpec(spec: RingSpec): void {
    this.#placement = new Placement(spec)
    this.#index(spec)
    for (const id of this.#down) if (!this.#addresses.has(id)) this.#down.delete(id)
  }

  *liveness(): Iterable<{ id: string; up: boolean }> {
    for (const w of this.#placement.spec.workers) yield { id: w.id, up: !this.#down.has(w.id) }
  }

  startProbes(intervalMs: number, timeoutMs: number): void {
    const probeAll = (): void => {
      for (const w of this.#placement.spec.workers) this.#probe(w.id, timeoutMs, intervalMs)
    }
    probeAll()
    this.#probeTimer = setInterval(probeAll, intervalMs)
    this.#probeTimer.unref()
  }

  stop(): void {
    clearInterval(this.#probeTimer)
    for (const s of this.#probing) s.destroy()
    this.#probing.clear()
  }

  #probe(workerId: string, timeoutMs: number, intervalMs: number): void {
    // the same socket options and listeners as a client's worker connection (worker-socket.ts)
    const s = connectWorker(this.#addresses.get(workerId)!, PROBE_READ)
    this.#probing.add(s)
    const end = (): boolean => {
      clearTimeout(timer)
      if (!this.#probing.delete(s)) return false
      s.destroy()
      return true
    }
    const timer = setTimeout(() => {
      if (end()) this.timedOut(workerId, intervalMs)
    }, timeoutMs)
    s.on('connect', () => {
      if (end()) this.markUp(workerId)
    })
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (end()) this.markDown(workerId, `probe ${err.code ?? err.message}`)
    })
    s.on('close', end)
  }

  #index(spec: RingSpec): void {
    this.#addresses.clear()
    for (const w of spec.workers) this.#addresses.set(w.id, parseHostPort(w.mqtt))
  }
}

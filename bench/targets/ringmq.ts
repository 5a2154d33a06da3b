// ringmq targets: a worker alone, the router in front of one worker, and a 3-worker cluster
// where publishers connect to w1 and subscribers to w2 (every message crosses the fabric).
// They are picked up as soon as `ringmq worker` / `ringmq router` start and print their ready
// line; until then `probe` says why they are skipped.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { freePorts, startServer, type ServerProcess } from './server-process.js'
import { distPath, hostPort, stopAllOf, type RunningTarget, type StartContext, type TargetDef } from './target.js'

export const CLI = distPath('src/cli/main.js')

/** null if `ringmq <command> --help` runs, else why not (first line of its error). */
export function probeCommand(command: string): string | null {
  if (!fs.existsSync(CLI)) return `${CLI} not built (npm run build)`
  const r = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8', timeout: 15_000 })
  if (r.status === 0) return null
  const why = `${r.stderr ?? ''}\n${r.stdout ?? ''}`
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0 && !l.startsWith('at ') && !l.startsWith('file://') && l !== '^')
  return `ringmq ${command} not usable: ${why ?? `exit ${r.status ?? r.signal}`}`
}

interface WorkerAddr {
  id: string
  mqtt: number
  peer: number
}

function writeRing(dir: string, workers: WorkerAddr[]): string {
  const file = path.join(dir, 'ring.json')
  const spec = {
    epoch: 1,
    replicas: 1,
    vnodes: 64,
    workers: workers.map((w) => ({ id: w.id, mqtt: `127.0.0.1:${w.mqtt}`, peer: `127.0.0.1:${w.peer}`, weight: 1, state: 'active' })),
  }
  fs.writeFileSync(file, JSON.stringify(spec, null, 2))
  return file
}

function startWorker(ctx: StartContext, args: string[], id: string): Promise<ServerProcess> {
  const data = path.join(ctx.dir, `data-${id}`)
  fs.mkdirSync(data, { recursive: true })
  return startServer({
    name: `ringmq-${id}`,
    cmd: process.execPath,
    // BENCH_METRICS=1 adds a /metrics listener (for looking at batch sizes while probing)
    args: [...(ctx.nodeArgs ?? []), CLI, 'worker', '--id', id, '--data', data, ...args, ...(process.env.BENCH_METRICS ? ['--metrics', '127.0.0.1:0'] : [])],
    cpu: ctx.serverCpu,
    readyLine: true,
  })
}

async function startRingWorkers(ctx: StartContext, n: number): Promise<{ procs: ServerProcess[]; addrs: WorkerAddr[] }> {
  const ports = await freePorts(2 * n)
  const addrs = Array.from({ length: n }, (_, i) => ({ id: `w${i + 1}`, mqtt: ports[2 * i]!, peer: ports[2 * i + 1]! }))
  const ring = writeRing(ctx.dir, addrs)
  const procs: ServerProcess[] = []
  try {
    for (const a of addrs) {
      procs.push(await startWorker(ctx, ['--mqtt', `127.0.0.1:${a.mqtt}`, '--peer', `127.0.0.1:${a.peer}`, '--ring', ring], a.id))
    }
  } catch (err) {
    await stopAllOf(procs)
    throw err
  }
  return { procs, addrs }
}

export const workerTarget: TargetDef = {
  id: 'ringmq-worker',
  label: 'ringmq worker alone',
  idle: true,
  jit: true,
  protocols: [4, 5],
  async probe() {
    return probeCommand('worker')
  },
  async start(ctx): Promise<RunningTarget> {
    const w = await startWorker(ctx, ['--mqtt', '127.0.0.1:0'], 'w1')
    const ep = hostPort(String(w.ready.mqtt))
    return { placement: { endpoint: () => ep }, groups: { total: [w] }, stop: () => w.stop() }
  },
}

export const routerTarget: TargetDef = {
  id: 'ringmq-router',
  label: 'ringmq router -> 1 worker',
  idle: true,
  jit: true,
  protocols: [4, 5],
  async probe() {
    return probeCommand('router') ?? probeCommand('worker')
  },
  async start(ctx): Promise<RunningTarget> {
    const { procs } = await startRingWorkers(ctx, 1)
    let router: ServerProcess
    try {
      router = await startServer({
        name: 'ringmq-router',
        cmd: process.execPath,
        args: [...(ctx.nodeArgs ?? []), CLI, 'router', '--mqtt', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--ring', path.join(ctx.dir, 'ring.json')],
        cpu: ctx.serverCpu,
        readyLine: true,
      })
    } catch (err) {
      await stopAllOf(procs)
      throw err
    }
    const ep = hostPort(String(router.ready.mqtt))
    return {
      placement: { endpoint: () => ep },
      groups: { total: [router, ...procs], own: [router] },
      stop: () => stopAllOf([router, ...procs]),
    }
  },
}

export const clusterTarget: TargetDef = {
  id: 'ringmq-cluster',
  label: 'ringmq 3 workers, pub on w1 -> sub on w2',
  idle: false,
  jit: true,
  protocols: [4, 5],
  async probe() {
    const why = probeCommand('worker')
    if (why) return why
    // the cluster needs the peer fabric: --peer and --ring must be accepted
    const help = spawnSync(process.execPath, [CLI, 'worker', '--help'], { encoding: 'utf8', timeout: 15_000 })
    const text = `${help.stdout}${help.stderr}`
    return text.includes('--peer') && text.includes('--ring') ? null : 'ringmq worker --help lists no --peer/--ring flags yet'
  },
  async start(ctx): Promise<RunningTarget> {
    const { procs } = await startRingWorkers(ctx, 3)
    const w1 = hostPort(String(procs[0]!.ready.mqtt))
    const w2 = hostPort(String(procs[1]!.ready.mqtt))
    // client IDs a worker does not own are refused; the generator then tries the next ID.
    // CPU is summed over the two workers a message crosses (the issue's "summed over both
    // workers"); w3 only keeps its peer links and is not counted.
    return { placement: { endpoint: (role) => (role === 'sub' ? w2 : w1) }, groups: { total: procs.slice(0, 2) }, stop: () => stopAllOf(procs) }
  },
}

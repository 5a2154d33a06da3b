// `ringmq dev`: a whole cluster on loopback in one command — N workers and one router as child
// processes, a ring spec under --data, every child's log forwarded with a prefix. Prints
//   ready router=127.0.0.1:1883 admin=127.0.0.1:P workers=w1@127.0.0.1:P,...
// once every child logged its "ready" line. Ctrl-C / SIGTERM stops them all.

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseFlags, usage, type FlagSpecs } from '../config/flags.js'
import { errConfig } from '../errors.js'
import { DEFAULT_VNODES, formatRingSpec, loadRingSpecFile, parseRingSpec } from '../ring/spec.js'

export const devFlags = {
  port: { type: 'number', default: 1883, help: 'router MQTT port on 127.0.0.1' },
  workers: { type: 'number', default: 3, help: 'number of workers' },
  replicas: { type: 'number', default: 2, help: 'replication factor N' },
  data: { type: 'string', default: './data', help: 'directory for ring.json and each worker\'s LMDB' },
  help: { type: 'boolean', default: false, help: 'show this help' },
} satisfies FlagSpecs

const HOST = '127.0.0.1'
const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js')
const READY_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 10_000

interface Child {
  name: string
  proc: ChildProcess
  ready: Promise<Record<string, unknown>>
  exited: Promise<number | null>
}

export async function run(argv: string[]): Promise<void> {
  const { flags } = parseFlags(argv, devFlags)
  if (flags.help) {
    process.stdout.write(usage('dev', devFlags) + '\n')
    return
  }
  const n = flags.workers
  if (!Number.isInteger(n) || n < 1 || n > 64) throw errConfig('--workers must be 1..64')
  if (!Number.isInteger(flags.replicas) || flags.replicas < 1 || flags.replicas > n) throw errConfig(`--replicas must be 1..${n}`)
  const data = path.resolve(flags.data)
  fs.mkdirSync(data, { recursive: true })

  const ports = await freePorts(3 * n + 2)
  const ringFile = path.join(data, 'ring.json')
  // A fresh epoch above any earlier run's, so workers that stored an older spec adopt this one.
  const epoch = fs.existsSync(ringFile) ? safeEpoch(ringFile) + 1 : 1
  const workers = Array.from({ length: n }, (_, i) => ({
    id: `w${i + 1}`,
    mqtt: `${HOST}:${ports[3 * i]}`,
    peer: `${HOST}:${ports[3 * i + 1]}`,
    metrics: `${HOST}:${ports[3 * i + 2]}`,
  }))
  const spec = parseRingSpec({ epoch, replicas: flags.replicas, vnodes: DEFAULT_VNODES, workers: workers.map(({ id, mqtt, peer }) => ({ id, mqtt, peer })) })
  fs.writeFileSync(ringFile, formatRingSpec(spec))

  const children: Child[] = []
  let stopping = false
  const stopAll = async (code: number): Promise<never> => {
    stopping = true
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM')
    const force = setTimeout(() => {
      for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL')
    }, STOP_TIMEOUT_MS)
    await Promise.all(children.map((c) => c.exited))
    clearTimeout(force)
    process.exit(code)
  }
  process.on('SIGINT', () => void stopAll(0))
  process.on('SIGTERM', () => void stopAll(0))

  const spawnChild = (name: string, args: string[]): Child => {
    const c = startChild(name, args, () => stopping)
    children.push(c)
    return c
  }
  try {
    const started = workers.map((w) =>
      spawnChild(w.id, ['worker', '--id', w.id, '--mqtt', w.mqtt, '--peer', w.peer, '--data', path.join(data, w.id), '--metrics', w.metrics, '--ring', ringFile]),
    )
    const workerReady = await Promise.all(started.map((c) => c.ready))
    const adminAt = `${HOST}:${ports[3 * n]}`
    const router = spawnChild('router', ['router', '--mqtt', `${HOST}:${flags.port}`, '--admin', adminAt, '--metrics', `${HOST}:${ports[3 * n + 1]}`, '--ring', ringFile])
    const routerReady = await router.ready
    const list = workers.map((w, i) => `${w.id}@${String(workerReady[i]!.mqtt ?? w.mqtt)}`).join(',')
    if (!workerReady.every((r) => typeof r.peer === 'string')) {
      process.stdout.write('[dev] note: workers run without the cluster fabric: publishes do not cross workers yet\n')
    }
    process.stdout.write(`[dev] data=${data} ring=${ringFile} epoch=${epoch} replicas=${flags.replicas}; Ctrl-C stops everything\n`)
    process.stdout.write(`ready router=${String(routerReady.mqtt)} admin=${String(routerReady.admin ?? adminAt)} workers=${list}\n`)
  } catch (err) {
    process.stderr.write(`[dev] startup failed: ${(err as Error).message}\n`)
    await stopAll(1)
  }
  for (const c of children) {
    void c.exited.then((code) => {
      if (!stopping) process.stdout.write(`[dev] ${c.name} exited (code ${String(code)}); the others keep running\n`)
    })
  }
}

function startChild(name: string, args: string[], stopping: () => boolean): Child {
  // Routers hold two sockets per device and little else: a small young generation keeps their
  // memory per connection down (docs/router.md); V8 cannot change it after start.
  const nodeArgs = args[0] === 'router' ? ['--max-semi-space-size=1'] : []
  const proc = spawn(process.execPath, [...nodeArgs, MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const prefix = `[${name}] `
  let onReady: (l: Record<string, unknown>) => void = () => {}
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    onReady = resolve
    const t = setTimeout(() => reject(new Error(`${name} did not log "ready" within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
    t.unref()
    proc.once('exit', (code, signal) => {
      clearTimeout(t)
      reject(new Error(`${name} exited during startup (${code ?? signal})`))
    })
  })
  ready.catch(() => {})
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    process.stdout.write(prefix + line + '\n')
    if (line.includes('"ready"')) {
      try {
        const rec = JSON.parse(line) as Record<string, unknown>
        if (rec.msg === 'ready') onReady(rec)
      } catch {
        // not a JSON log line
      }
    }
  })
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    if (!stopping() || line.trim()) process.stderr.write(prefix + line + '\n')
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  return { name, proc, ready, exited }
}

function safeEpoch(file: string): number {
  try {
    return loadRingSpecFile(file).epoch
  } catch {
    return 0
  }
}

/** Ports the kernel hands out for port 0 on loopback (released right away, so used soon after). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer()
      s.once('error', reject)
      s.listen(0, HOST, () => resolve(s))
    })),
  )
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

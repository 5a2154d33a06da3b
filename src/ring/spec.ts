// The ring spec: the whole cluster membership, versioned by epoch. Every node stores the newest
// spec it has seen; a higher epoch always wins.
//
// File format (ring.json) is the spec itself as JSON:
//   {
//     "epoch": 1,                       integer >= 0
//     "replicas": 2,                    integer >= 1, at most the number of workers
//     "vnodes": 8192,                   optional, virtual nodes per unit of weight (DEFAULT_VNODES)
//     "workers": [
//       { "id": "w1", "mqtt": "10.0.0.1:1884", "peer": "10.0.0.1:7001",
//         "weight": 1,                  optional, > 0, default 1
//         "state": "active" }           optional, "active" | "draining", default "active"
//     ]
//   }
// Unknown keys are ignored so that a newer node's spec can still be read by an older one.

import fs from 'node:fs'
import { errRingInvalid } from '../errors.js'

export type WorkerState = 'active' | 'draining'

export interface RingWorker {
  /** stable worker ID, e.g. "w1" */
  id: string
  /** MQTT listener routers connect to, host:port */
  mqtt: string
  /** gRPC peer/admin listener, host:port */
  peer: string
  /** relative share of client IDs; 1 is the default */
  weight: number
  state: WorkerState
}

export interface RingSpec {
  /** monotonically increasing version; a node adopts any spec with a higher epoch */
  epoch: number
  /** replication factor N: prefs(clientId) has N distinct workers */
  replicas: number
  /** virtual nodes per unit of weight */
  vnodes: number
  workers: RingWorker[]
}

/**
 * Virtual nodes per unit of weight. 8192 keeps the busiest of 3..16 equal workers within 5% of
 * the mean (relative spread of a worker's share is about 1/sqrt(vnodes)); see docs/ring.md.
 */
export const DEFAULT_VNODES = 8192
export const MAX_VNODES = 65536
/** Bound on the ring's size (points over all workers): ~100 MB and seconds to build at most. */
export const MAX_POINTS = 2_000_000

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
const ADDR_RE = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/

/** Validates an untyped value (parsed JSON) as a ring spec; throws ERR_RING_INVALID listing every problem. */
export function parseRingSpec(json: unknown): RingSpec {
  const problems: string[] = []
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw errRingInvalid('ring spec must be a JSON object with epoch, replicas and workers')
  }
  const o = json as Record<string, unknown>
  const epoch = o.epoch
  if (!Number.isSafeInteger(epoch) || (epoch as number) < 0) problems.push(`"epoch" must be an integer >= 0, got ${show(epoch)}`)
  const replicas = o.replicas
  if (!Number.isSafeInteger(replicas) || (replicas as number) < 1) problems.push(`"replicas" must be an integer >= 1, got ${show(replicas)}`)
  const vnodes = o.vnodes === undefined ? DEFAULT_VNODES : o.vnodes
  if (!Number.isSafeInteger(vnodes) || (vnodes as number) < 1 || (vnodes as number) > MAX_VNODES) {
    problems.push(`"vnodes" must be an integer from 1 to ${MAX_VNODES}, got ${show(vnodes)}`)
  }
  const workers: RingWorker[] = []
  if (!Array.isArray(o.workers) || o.workers.length === 0) {
    problems.push(`"workers" must be a non-empty array`)
  } else {
    const ids = new Set<string>()
    const mqtts = new Set<string>()
    const peers = new Set<string>()
    o.workers.forEach((raw: unknown, i: number) => {
      const w = parseWorker(raw, `workers[${i}]`, problems)
      if (!w) return
      if (ids.has(w.id)) problems.push(`workers[${i}]: duplicate worker id "${w.id}"`)
      if (mqtts.has(w.mqtt)) problems.push(`workers[${i}] (${w.id}): mqtt address ${w.mqtt} is already used by another worker`)
      if (peers.has(w.peer)) problems.push(`workers[${i}] (${w.id}): peer address ${w.peer} is already used by another worker`)
      ids.add(w.id)
      mqtts.add(w.mqtt)
      peers.add(w.peer)
      workers.push(w)
    })
    if (problems.length === 0) {
      if ((replicas as number) > workers.length) {
        problems.push(`"replicas" (${replicas as number}) is larger than the number of workers (${workers.length})`)
      }
      if (!workers.some((w) => w.state === 'active')) problems.push('at least one worker must be "active"')
      const points = workers.reduce((sum, w) => sum + Math.max(1, Math.round((vnodes as number) * w.weight)), 0)
      if (points > MAX_POINTS) problems.push(`vnodes x total weight is ${points} points, more than ${MAX_POINTS}: lower "vnodes"`)
    }
  }
  if (problems.length > 0) throw errRingInvalid(`invalid ring spec: ${problems.join('; ')}`)
  return freeze({ epoch: epoch as number, replicas: replicas as number, vnodes: vnodes as number, workers })
}

function parseWorker(raw: unknown, where: string, problems: string[]): RingWorker | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`${where}: must be an object {id, mqtt, peer}`)
    return undefined
  }
  const w = raw as Record<string, unknown>
  const before = problems.length
  const id = w.id
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    problems.push(`${where}: "id" must be 1-64 characters of letters, digits, "_", "." or "-", got ${show(id)}`)
  }
  const label = typeof id === 'string' ? `${where} (${id})` : where
  for (const key of ['mqtt', 'peer'] as const) {
    const err = checkAddress(w[key])
    if (err) problems.push(`${label}: "${key}" ${err}`)
  }
  const weight = w.weight === undefined ? 1 : w.weight
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0 || weight > 1000) {
    problems.push(`${label}: "weight" must be a number > 0 and <= 1000, got ${show(weight)}`)
  }
  const state = w.state === undefined ? 'active' : w.state
  if (state !== 'active' && state !== 'draining') problems.push(`${label}: "state" must be "active" or "draining", got ${show(state)}`)
  if (problems.length > before) return undefined
  return { id: id as string, mqtt: w.mqtt as string, peer: w.peer as string, weight: weight as number, state: state as WorkerState }
}

/** A ring address must name a reachable port: host:port or [v6]:port, port 1..65535. */
function checkAddress(v: unknown): string | undefined {
  if (typeof v !== 'string') return `must be a "host:port" string, got ${show(v)}`
  const m = ADDR_RE.exec(v)
  if (!m) return `must be "host:port" or "[v6]:port", got ${show(v)}`
  const port = Number(m[3])
  if (port < 1 || port > 65535) return `port must be 1..65535, got ${show(v)}`
  if (m[2] === '0.0.0.0' || m[1] === '::') return `must be an address others can connect to, not ${v}`
  return undefined
}

export function loadRingSpecFile(path: string): RingSpec {
  let text: string
  try {
    text = fs.readFileSync(path, 'utf8')
  } catch (err) {
    throw errRingInvalid(`cannot read ring spec ${path}: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw errRingInvalid(`ring spec ${path} is not valid JSON: ${(err as Error).message}`)
  }
  try {
    return parseRingSpec(json)
  } catch (err) {
    throw errRingInvalid(`${path}: ${(err as Error).message}`)
  }
}

/** The ring.json text for a spec (stable key order, one worker per line). */
export function formatRingSpec(spec: RingSpec): string {
  const workers = spec.workers.map((w) => '    ' + JSON.stringify({ id: w.id, mqtt: w.mqtt, peer: w.peer, weight: w.weight, state: w.state }))
  return `{\n  "epoch": ${spec.epoch},\n  "replicas": ${spec.replicas},\n  "vnodes": ${spec.vnodes},\n  "workers": [\n${workers.join(',\n')}\n  ]\n}\n`
}

/**
 * The ring of a worker running alone: itself, replicas 1. Addresses are taken as given (the
 * worker passes the addresses it actually listens on), so no reachability check is made here.
 */
export function standaloneSpec(id: string, mqtt: string, peer: string): RingSpec {
  if (!ID_RE.test(id)) throw errRingInvalid(`worker id "${id}" must be 1-64 characters of letters, digits, "_", "." or "-"`)
  return freeze({ epoch: 0, replicas: 1, vnodes: DEFAULT_VNODES, workers: [{ id, mqtt, peer, weight: 1, state: 'active' }] })
}

function freeze(spec: RingSpec): RingSpec {
  for (const w of spec.workers) Object.freeze(w)
  Object.freeze(spec.workers)
  return Object.freeze(spec)
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v)
}

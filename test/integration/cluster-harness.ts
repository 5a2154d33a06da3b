// In-process cluster for fabric tests: N createGrpcFabric instances on loopback with REAL
// gRPC between them, each with a recording test double of the BrokerSurface (the seam).

import { Registry } from 'prom-client'
import type { Settle } from '../../worker/commit.js'
import type { BrokerSurface, Fabric, GroupKey, RouteChange } from '../../worker/fabric.js'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import { createLogger } from '../../src/log.js'
import { Placement } from '../../src/ring/placement.js'
import { parseRingSpec, type RingSpec } from '../../src/ring/spec.js'
import { createGrpcFabric, type GrpcFabric, type GrpcFabricOptions } from '../../src/cluster/grpc-fabric.js'
import { freePorts } from '../helpers/process.js'

export class RecordingBroker implements BrokerSurface {
  delivered: Array<{ msg: BrokerMessage; groups: GroupKey[]; normal: boolean }> = []
  retained = new Map<string, BrokerMessage>()
  ended: Array<{ clientId: string; reasonCode: number }> = []
  routes = new Map<string, RouteChange & { count: number }>()
  /** when set, deliverForwarded waits on it (to test ack timing) or rejects */
  gate: Promise<void> | undefined

  constructor(readonly workerId: string) {}

  deliverForwarded(msg: BrokerMessage, groups: GroupKey[], normal: boolean, done: Settle | null): void {
    this.delivered.push({ msg, groups, normal })
    if (done === null) return
    if (this.gate === undefined) return done.settle(null)
    this.gate.then(
      () => done.settle(null),
      (err: Error) => done.settle(err),
    )
  }
  applyRetained(topic: string, msg: BrokerMessage | null): void {
    if (msg) this.retained.set(topic, msg)
    else this.retained.delete(topic)
  }
  listRetained(): Iterable<{ topic: string; msg: BrokerMessage }> {
    return [...this.retained].map(([topic, msg]) => ({ topic, msg }))
  }
  endSession(clientId: string, reasonCode: number): Promise<void> {
    this.ended.push({ clientId, reasonCode })
    return Promise.resolve()
  }
  routeSnapshot(): Array<RouteChange & { count: number }> {
    return [...this.routes.values()]
  }
}

/** fabric.forward as a promise, as a publisher's acknowledgement would wait for it; undefined for QoS 0 */
export function forwarded(fabric: Fabric, peer: string, msg: BrokerMessage, groups: GroupKey[], normal: boolean): Promise<void> | undefined {
  if (msg.qos === 0) {
    fabric.forward(peer, msg, groups, normal, null)
    return undefined
  }
  return new Promise((resolve, reject) => fabric.forward(peer, msg, groups, normal, { settle: (err) => (err === null ? resolve() : reject(err)) }))
}

export interface Node {
  id: string
  port: number
  broker: RecordingBroker
  registry: Registry
  fabric: GrpcFabric
  rings: RingSpec[]
  /** every JSON log line of this node's fabric */
  logs: Array<Record<string, unknown>>
}

export const HEARTBEAT_MS = 150
export const MISSED_BEATS = 6

export async function makeSpec(n: number, replicas = 2): Promise<RingSpec> {
  const ports = await freePorts(n * 2)
  return parseRingSpec({
    epoch: 1,
    replicas,
    vnodes: 64,
    workers: Array.from({ length: n }, (_, i) => ({ id: `w${i + 1}`, mqtt: `127.0.0.1:${ports[n + i]}`, peer: `127.0.0.1:${ports[i]}` })),
  })
}

export async function startNode(
  spec: RingSpec,
  id: string,
  broker = new RecordingBroker(id),
  extra: Partial<GrpcFabricOptions> = {},
): Promise<Node> {
  const w = spec.workers.find((x) => x.id === id)!
  const port = Number(w.peer.split(':')[1])
  const registry = new Registry()
  const rings: RingSpec[] = []
  const logs: Array<Record<string, unknown>> = []
  const fabric = await createGrpcFabric({
    workerId: id,
    placement: new Placement(spec),
    broker,
    listen: { host: '127.0.0.1', port },
    log: createLogger({ name: 'test', id }, (line) => void logs.push(JSON.parse(line))),
    registry,
    heartbeatMs: HEARTBEAT_MS,
    missedBeats: MISSED_BEATS,
    onRing: (s) => rings.push(s),
    ...extra,
  })
  // like a real broker, the recording broker keeps its own route table and tells the fabric
  const f = fabric.fabric
  const added = f.routeAdded.bind(f)
  const removed = f.routeRemoved.bind(f)
  f.routeAdded = (r) => {
    broker.routes.set(`${r.group ?? ''}|${r.filter}`, { ...r, count: (r as { count?: number }).count ?? 1 })
    added(r)
  }
  f.routeRemoved = (r) => {
    broker.routes.delete(`${r.group ?? ''}|${r.filter}`)
    removed(r)
  }
  return { id, port, broker, registry, fabric, rings, logs }
}

export async function startCluster(n: number, replicas = 2): Promise<{ spec: RingSpec; nodes: Node[] }> {
  const spec = await makeSpec(n, replicas)
  const nodes = await Promise.all(spec.workers.map((w) => startNode(spec, w.id)))
  // settled: every link up, and the one kept is the one dialed by the lower ID (peer-link.ts)
  await waitFor(
    () => nodes.every((a) => a.fabric.status().peers.every((p) => p.up && p.dialer === (a.id < p.id ? a.id : p.id))),
    'all links up',
  )
  return { spec, nodes }
}

/** Polls `cond` until it holds (observable condition, bounded time). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get()
  if (!m) return 0
  return m.values
    .filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))
    .reduce((n, v) => n + v.value, 0)
}

export function msg(topic: string, payload: string, extra: Partial<BrokerMessage> = {}): BrokerMessage {
  return { topic, payload: Buffer.from(payload), qos: 0, retain: false, origin: 'w1', publisherId: 'pub', ...extra }
}

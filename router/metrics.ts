// The router's instruments on its one registry. The connection path bumps plain numbers
// (RouterMetrics.counts) and observes one histogram; counters read the numbers at scrape time.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export type CloseReason =
  | 'client-closed'
  | 'worker-closed'
  | 'deadline'
  | 'not-connect'
  | 'malformed'
  | 'too-large'
  | 'no-worker'
  | 'client-error'
  | 'shutdown'
  | 'limit'

export type RouteFailure = 'connect-refused' | 'connect-timeout' | 'connect-error' | 'no-worker'

const CLOSE_REASONS: CloseReason[] = ['client-closed', 'worker-closed', 'deadline', 'not-connect', 'malformed', 'too-large', 'no-worker', 'client-error', 'shutdown', 'limit']
const ROUTE_FAILURES: RouteFailure[] = ['connect-refused', 'connect-timeout', 'connect-error', 'no-worker']

export interface RouterMetricsSources {
  /** open client connections */
  connections(): number
  /** bytes written to workers and to clients so far, over all connections ever */
  bytes(): { toWorker: number; toClient: number }
  /** liveness of every worker in the ring */
  workers(): Iterable<{ id: string; up: boolean }>
  epoch(): number
}

/** Plain numbers bumped on the connection path; exported as counters at scrape time. */
export interface RouterCounts {
  accepted: number
  closed: Record<CloseReason, number>
  routeFailures: Record<RouteFailure, number>
}

export class RouterMetrics {
  /**
   * Bumped as plain numbers (a labelled prom-client child hashes and validates its labels on
   * every inc); read by the counters' collect().
   */
  readonly counts: RouterCounts = {
    accepted: 0,
    closed: Object.fromEntries(CLOSE_REASONS.map((r) => [r, 0])) as Record<CloseReason, number>,
    routeFailures: Object.fromEntries(ROUTE_FAILURES.map((r) => [r, 0])) as Record<RouteFailure, number>,
  }
  readonly connectLatency: Histogram

  constructor(registry: Registry, src: RouterMetricsSources) {
    const counts = this.counts
    new Counter({
      name: 'ringmq_router_connections_accepted_total',
      help: 'TCP connections accepted',
      registers: [registry],
      collect() {
        this.reset()
        this.inc(counts.accepted)
      },
    })
    new Counter({
      name: 'ringmq_router_connections_closed_total',
      help: 'client connections closed, by reason',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        this.reset()
        for (const r of CLOSE_REASONS) this.labels(r).inc(counts.closed[r])
      },
    })
    new Counter({
      name: 'ringmq_router_route_failures_total',
      help: 'failed attempts to reach a worker, by reason',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        this.reset()
        for (const r of ROUTE_FAILURES) this.labels(r).inc(counts.routeFailures[r])
      },
    })
    this.connectLatency = new Histogram({
      name: 'ringmq_router_connect_latency_seconds',
      help: 'from the client CONNECT being parsed to the worker connection being open (including retries)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    })
    new Gauge({
      name: 'ringmq_router_connections',
      help: 'open client connections',
      registers: [registry],
      collect() {
        this.set(src.connections())
      },
    })
    new Gauge({
      name: 'ringmq_router_worker_up',
      help: '1 when the router believes the worker reachable',
      labelNames: ['worker'],
      registers: [registry],
      collect() {
        this.reset()
        for (const w of src.workers()) this.labels(w.id).set(w.up ? 1 : 0)
      },
    })
    new Gauge({
      name: 'ringmq_router_ring_epoch',
      help: 'epoch of the ring spec the router routes by',
      registers: [registry],
      collect() {
        this.set(src.epoch())
      },
    })
    new Counter({
      name: 'ringmq_router_bytes_proxied_total',
      help: 'bytes spliced, by direction',
      labelNames: ['direction'],
      registers: [registry],
      collect() {
        const b = src.bytes()
        this.reset()
        this.labels('to_worker').inc(b.toWorker)
        this.labels('to_client').inc(b.toClient)
      },
    })
  }
}

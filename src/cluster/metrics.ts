// Fabric metrics on the process registry. Point-in-time values (link up, queue lengths, route
// counts, epoch) are gauges filled in collect() from the fabric's state.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface FabricGauges {
  epoch(): number
  peers(): Array<{ id: string; up: boolean; queued: number; routes: number; skewMs?: number }>
  localRoutes(): number
  retained(): number
}

export class FabricMetrics {
  readonly forwardBatches: Counter<'peer'>
  readonly forwardMessages: Counter<'peer'>
  readonly forwardDrops: Counter<'peer' | 'reason'>
  readonly forwardAckSeconds: Histogram<'peer'>
  readonly receivedMessages: Counter<'peer'>
  readonly receiveDrops: Counter<'peer' | 'reason'>
  readonly routeResyncs: Counter<'peer' | 'reason'>
  readonly retainedSync: Counter<'event'>
  readonly sessionClaims: Counter<'result'>
  readonly ringAdopted: Counter

  constructor(registry: Registry, gauges: FabricGauges) {
    const registers = [registry]
    this.forwardBatches = new Counter({ name: 'ringmq_forward_batches_total', help: 'Publish batches sent to a peer', labelNames: ['peer'], registers })
    this.forwardMessages = new Counter({ name: 'ringmq_forward_messages_total', help: 'Messages forwarded to a peer', labelNames: ['peer'], registers })
    this.forwardDrops = new Counter({
      name: 'ringmq_forward_drops_total',
      help: 'Forwards dropped or rejected, by reason (peer_down, buffer_full, link_lost, rejected_by_peer)',
      labelNames: ['peer', 'reason'],
      registers,
    })
    this.forwardAckSeconds = new Histogram({
      name: 'ringmq_forward_ack_seconds',
      help: 'Time from forward to the peer acknowledging a QoS 1/2 message (forward lag)',
      labelNames: ['peer'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    })
    this.receivedMessages = new Counter({ name: 'ringmq_forward_received_total', help: 'Forwarded messages received from a peer', labelNames: ['peer'], registers })
    this.receiveDrops = new Counter({
      name: 'ringmq_forward_receive_drops_total',
      help: 'Publish batches or acks from a peer that could not be read, by reason (malformed_batch, malformed_ack)',
      labelNames: ['peer', 'reason'],
      registers,
    })
    this.routeResyncs = new Counter({ name: 'ringmq_route_resyncs_total', help: 'Route snapshots requested from a peer, by reason (gap, digest)', labelNames: ['peer', 'reason'], registers })
    this.retainedSync = new Counter({
      name: 'ringmq_retained_sync_total',
      help: 'Retained replication events (sent, applied, ignored, catchup_requested, catchup_sent)',
      labelNames: ['event'],
      registers,
    })
    this.sessionClaims = new Counter({ name: 'ringmq_session_claims_total', help: 'Session claims sent, by result (acked, timeout, none)', labelNames: ['result'], registers })
    this.ringAdopted = new Counter({ name: 'ringmq_ring_adopted_total', help: 'Ring specs adopted from peers or Admin.ApplyRing', registers })
    new Gauge({
      name: 'ringmq_ring_epoch',
      help: 'Ring epoch this node uses',
      registers,
      collect() {
        this.set(gauges.epoch())
      },
    })
    new Gauge({
      name: 'ringmq_peer_link_up',
      help: '1 when the link to the peer is up',
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset()
        for (const p of gauges.peers()) this.set({ peer: p.id }, p.up ? 1 : 0)
      },
    })
    new Gauge({
      name: 'ringmq_peer_clock_skew_seconds',
      help: 'Peer wall clock minus ours at its last heartbeat (includes transit); retained LWW assumes small skew',
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset()
        for (const p of gauges.peers()) if (p.skewMs !== undefined) this.set({ peer: p.id }, p.skewMs / 1000)
      },
    })
    new Gauge({
      name: 'ringmq_forward_queue',
      help: 'Forwards queued for a peer and not yet written to its link',
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset()
        for (const p of gauges.peers()) this.set({ peer: p.id }, p.queued)
      },
    })
    new Gauge({
      name: 'ringmq_cluster_routes',
      help: 'Route entries: this worker\'s own (scope=local) and held for peers (scope=remote)',
      labelNames: ['scope'],
      registers,
      collect() {
        this.set({ scope: 'local' }, gauges.localRoutes())
        this.set({ scope: 'remote' }, gauges.peers().reduce((n, p) => n + p.routes, 0))
      },
    })
    new Gauge({
      name: 'ringmq_retained_registers',
      help: 'Retained LWW registers held (messages and unexpired tombstones)',
      registers,
      collect() {
        this.set(gauges.retained())
      },
    })
  }
}

// The worker's instruments on the process registry. The hot path bumps plain numbers in
// `Stats`; prom-client reads them in `collect()`, so a PUBLISH never hashes label sets.

import { Counter, Gauge, type Registry } from 'prom-client'

export type PacketType =
  | 'connect' | 'connack' | 'publish' | 'puback' | 'pubrec' | 'pubrel' | 'pubcomp' | 'subscribe' | 'suback'
  | 'unsubscribe' | 'unsuback' | 'pingreq' | 'pingresp' | 'disconnect' | 'auth'

export class Stats {
  /** by type, except PUBLISH: `publishPacketsIn` and `publishesDelivered` (plain fields on the hot path) */
  packetsIn: Record<string, number> = Object.create(null)
  packetsOut: Record<string, number> = Object.create(null)
  publishPacketsIn = 0
  bytesIn = 0
  bytesOut = 0
  publishesReceived = 0
  publishesDelivered = 0
  dropped: Record<string, number> = Object.create(null)
  protocolErrors: Record<string, number> = Object.create(null)
  accepted = 0
  closed: Record<string, number> = Object.create(null)
  refused: Record<string, number> = Object.create(null)
  /** QoS 1 inflight records of persistent sessions: written, or skipped because the PUBACK came first */
  inflightRecords: Record<'written' | 'skipped', number> = { written: 0, skipped: 0 }

  drop(reason: string, n = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + n
  }
  protocolError(reason: string): void {
    this.protocolErrors[reason] = (this.protocolErrors[reason] ?? 0) + 1
  }
  close(reason: string): void {
    this.closed[reason] = (this.closed[reason] ?? 0) + 1
  }
}

export interface GaugeSources {
  connections(): number
  sessions(): { online: number; offline: number }
  queued(): number
  retained(): number
  storeBytes(): number
  inflight(): number
}

/** Registers the worker metrics on `registry`, reading `stats` and `g` at scrape time. */
export function registerWorkerMetrics(registry: Registry, stats: Stats, g: GaugeSources): void {
  const counterFrom = (name: string, help: string, labelName: string, read: () => Record<string, number>): void => {
    new Counter({
      name, help, labelNames: [labelName], registers: [registry],
      collect() {
        this.reset()
        for (const [k, v] of Object.entries(read())) this.inc({ [labelName]: k }, v)
      },
    })
  }
  const plainCounter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name, help, registers: [registry],
      collect() {
        this.reset()
        this.inc(read())
      },
    })
  }
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()) } })
  }
  gauge('ringmq_connections', 'Open MQTT connections', g.connections)
  plainCounter('ringmq_connections_accepted_total', 'TCP connections accepted', () => stats.accepted)
  counterFrom('ringmq_connections_closed_total', 'Connections closed, by reason', 'reason', () => stats.closed)
  counterFrom('ringmq_connections_refused_total', 'CONNECTs refused, by reason', 'reason', () => stats.refused)
  counterFrom('ringmq_packets_received_total', 'MQTT packets received, by type', 'type', () => withPublish(stats.packetsIn, stats.publishPacketsIn))
  counterFrom('ringmq_packets_sent_total', 'MQTT packets sent, by type', 'type', () => withPublish(stats.packetsOut, stats.publishesDelivered))
  plainCounter('ringmq_bytes_received_total', 'Bytes received from MQTT clients', () => stats.bytesIn)
  plainCounter('ringmq_bytes_sent_total', 'Bytes written to MQTT clients', () => stats.bytesOut)
  plainCounter('ringmq_publishes_received_total', 'PUBLISH packets accepted from clients', () => stats.publishesReceived)
  plainCounter('ringmq_publishes_delivered_total', 'PUBLISH packets written to subscribers', () => stats.publishesDelivered)
  counterFrom('ringmq_publishes_dropped_total', 'Messages not delivered, by reason', 'reason', () => stats.dropped)
  counterFrom('ringmq_protocol_errors_total', 'Protocol violations by clients, by reason', 'reason', () => stats.protocolErrors)
  const sessions = new Gauge({
    name: 'ringmq_sessions', help: 'Sessions by state', labelNames: ['state'], registers: [registry],
    collect() {
      const s = g.sessions()
      sessions.set({ state: 'online' }, s.online)
      sessions.set({ state: 'offline' }, s.offline)
    },
  })
  gauge('ringmq_queued_messages', 'Messages queued for sessions', g.queued)
  counterFrom('ringmq_inflight_records_total', 'QoS 1 inflight records of persistent sessions: written, or skipped (acknowledged or session ended before written)', 'result', () => stats.inflightRecords)
  gauge('ringmq_inflight_messages', 'Outgoing QoS 1/2 messages awaiting acknowledgement', g.inflight)
  gauge('ringmq_retained_messages', 'Retained messages held', g.retained)
  gauge('ringmq_lmdb_size_bytes', 'Size of the LMDB environment', g.storeBytes)
}

/** Per-type counts with the PUBLISH count added (absent while zero, like every other type). */
function withPublish(byType: Record<string, number>, publish: number): Record<string, number> {
  return publish === 0 ? byType : { ...byType, publish }
}

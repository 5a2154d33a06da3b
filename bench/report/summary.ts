// From raw results to the figures of the report: one number per (scenario, figure) per run,
// then median and min-max over the rounds of each target.

import type { IdleResult } from '../gen/idle.js'
import type { LoadResult } from '../gen/load.js'

export interface ErrorResult {
  kind: 'error'
  scenario: string
  error: string
}

export type ScenarioResult = LoadResult | IdleResult | ErrorResult

export interface TargetRound {
  target: string
  round: number
  /** set when the target could not be started for this round */
  error?: string
  results: ScenarioResult[]
}

export interface Stat {
  median: number
  min: number
  max: number
  n: number
}

/** target id -> figure key ("sat-q0 cpu") -> stat over rounds */
export type Aggregate = Map<string, Map<string, Stat>>

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const m = v.length >> 1
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2
}

export function stat(xs: number[]): Stat {
  const v = xs.filter((x) => Number.isFinite(x))
  return { median: median(v), min: v.length ? Math.min(...v) : NaN, max: v.length ? Math.max(...v) : NaN, n: v.length }
}

/**
 * Figures of one scenario result, keyed "<scenario> <figure>":
 * msg/s, cpu (us per delivered message, all server processes), cpu.own (the proxy alone),
 * p50/p99/p99.9 (us, open loop only), conn/s, rss and rss.own (KB per idle connection),
 * cpu/conn and cpu/conn.own (us per connect).
 */
export function figuresOf(r: ScenarioResult): Record<string, number> {
  const out: Record<string, number> = {}
  if (r.kind === 'load') {
    const n = r.spec.name
    out[`${n} msg/s`] = r.deliveredPerSec
    out[`${n} cpu`] = r.cpuUsPerMsg.total ?? NaN
    if (r.cpuUsPerMsg.own !== undefined) out[`${n} cpu.own`] = r.cpuUsPerMsg.own
    if (r.spec.mode === 'open') {
      out[`${n} p50`] = r.latency.p50Us
      out[`${n} p99`] = r.latency.p99Us
      out[`${n} p99.9`] = r.latency.p999Us
    }
  } else if (r.kind === 'idle') {
    const n = r.spec.name
    out[`${n} conn/s`] = r.connectsPerSec
    out[`${n} rss`] = r.rssKbPerConn.total ?? NaN
    out[`${n} cpu/conn`] = r.cpuUsPerConnect.total ?? NaN
    if (r.rssKbPerConn.own !== undefined) out[`${n} rss.own`] = r.rssKbPerConn.own
    if (r.cpuUsPerConnect.own !== undefined) out[`${n} cpu/conn.own`] = r.cpuUsPerConnect.own
  }
  return out
}

export function aggregate(rounds: TargetRound[]): Aggregate {
  const raw = new Map<string, Map<string, number[]>>()
  for (const tr of rounds) {
    const m = raw.get(tr.target) ?? new Map<string, number[]>()
    raw.set(tr.target, m)
    for (const r of tr.results) {
      for (const [k, v] of Object.entries(figuresOf(r))) {
        const xs = m.get(k) ?? []
        xs.push(v)
        m.set(k, xs)
      }
    }
  }
  const agg: Aggregate = new Map()
  for (const [t, m] of raw) agg.set(t, new Map([...m].map(([k, xs]) => [k, stat(xs)])))
  return agg
}

export function get(agg: Aggregate, target: string, key: string): number {
  return agg.get(target)?.get(key)?.median ?? NaN
}

/** Every figure key seen, in a stable order: scenario order of first appearance, then figure order. */
export function figureKeys(agg: Aggregate, scenarioOrder: string[]): string[] {
  const figOrder = ['msg/s', 'cpu', 'cpu.own', 'p50', 'p99', 'p99.9', 'conn/s', 'rss', 'rss.own', 'cpu/conn', 'cpu/conn.own']
  const keys = new Set<string>()
  for (const m of agg.values()) for (const k of m.keys()) keys.add(k)
  const rank = (k: string): [number, number] => {
    const i = k.indexOf(' ')
    const s = scenarioOrder.indexOf(k.slice(0, i))
    return [s < 0 ? 1e9 : s, figOrder.indexOf(k.slice(i + 1))]
  }
  return [...keys].sort((a, b) => {
    const [sa, fa] = rank(a)
    const [sb, fb] = rank(b)
    return sa - sb || fa - fb || a.localeCompare(b)
  })
}

/** Problems worth a line in the report: lost or duplicated messages, failed connects, errors. */
export function anomalies(rounds: TargetRound[]): string[] {
  const out: string[] = []
  for (const tr of rounds) {
    const where = `${tr.target} round ${tr.round + 1}`
    if (tr.error) out.push(`${where}: ${tr.error}`)
    for (const r of tr.results) {
      if (r.kind === 'error') out.push(`${where} ${r.scenario}: ${r.error}`)
      else if (r.kind === 'load') {
        if (r.missing > 0) out.push(`${where} ${r.spec.name}: ${r.missing} of ${r.expected} messages not delivered by the end of the drain (${r.spec.drainMs / 1000} s after sending stopped)${r.spec.qos === 0 ? '; QoS 0 allows loss' : ''}`)
        if (r.duplicates > 0) out.push(`${where} ${r.spec.name}: ${r.duplicates} duplicate deliveries`)
        // generator-bound only if the server still had CPU to spare (the server core is shared by all its processes)
        const serverPct = ((r.cpuUs.total ?? NaN) / (r.windowMs * 1000)) * 100
        if (r.generatorCpuPct > 90 && !(serverPct > 90)) out.push(`${where} ${r.spec.name}: generator at ${r.generatorCpuPct.toFixed(0)}% CPU while the server used ${serverPct.toFixed(0)}%, the figure is generator-bound`)
      } else if (r.failed > 0) out.push(`${where} ${r.spec.name}: ${r.failed} connects failed (${r.firstError})`)
    }
  }
  return out
}

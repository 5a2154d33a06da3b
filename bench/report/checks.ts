// The targets for ringmq, evaluated on the medians of one run. Each is a ratio
// against a reference system measured in the same run (same generator, same pinning) or an
// absolute bound. A target whose inputs were not measured is SKIP, never PASS.

import { get, type Aggregate } from './summary.js'

export type CheckStatus = 'PASS' | 'FAIL' | 'SKIP'

export interface Check {
  /** what is compared, e.g. "worker cpu sat-q0 / mosquitto" */
  what: string
  value: number
  limit: number
  /** 'ratio' values are x-times; 'us' and 'KB' are absolute */
  unit: 'ratio' | 'us' | 'KB'
  status: CheckStatus
  why?: string
}

export const IDS = {
  worker: 'ringmq-worker',
  router: 'ringmq-router',
  cluster: 'ringmq-cluster',
  mosquitto: 'mosquitto',
  aedes: 'aedes',
  haproxy: 'haproxy',
} as const

export const CPU_SCENARIOS = ['sat-q0', 'sat-q1', 'rate20k-q0', 'rate20k-q1']

function ratioCheck(agg: Aggregate, what: string, a: string, b: string, key: string, limit: number): Check {
  const va = get(agg, a, key)
  const vb = get(agg, b, key)
  const value = va / vb
  if (!Number.isFinite(value)) {
    const missing = [!Number.isFinite(va) ? a : null, !Number.isFinite(vb) ? b : null].filter(Boolean).join(' and ')
    return { what, value: NaN, limit, unit: 'ratio', status: 'SKIP', why: `no "${key}" for ${missing}` }
  }
  return { what, value, limit, unit: 'ratio', status: value <= limit ? 'PASS' : 'FAIL' }
}

function absCheck(agg: Aggregate, what: string, t: string, key: string, limit: number, unit: 'us' | 'KB', strict = false): Check {
  const value = get(agg, t, key)
  if (!Number.isFinite(value)) return { what, value: NaN, limit, unit, status: 'SKIP', why: `no "${key}" for ${t}` }
  return { what, value, limit, unit, status: (strict ? value < limit : value <= limit) ? 'PASS' : 'FAIL' }
}

export function evaluateTargets(agg: Aggregate): Check[] {
  const { worker, router, cluster, mosquitto, aedes, haproxy } = IDS
  const out: Check[] = []
  for (const s of CPU_SCENARIOS) {
    out.push(ratioCheck(agg, `worker CPU/msg ${s} vs Mosquitto`, worker, mosquitto, `${s} cpu`, 1.2))
    out.push(ratioCheck(agg, `worker CPU/msg ${s} vs Aedes`, worker, aedes, `${s} cpu`, 0.7))
  }
  out.push(ratioCheck(agg, 'worker p50 at 2,000 msg/s vs Mosquitto', worker, mosquitto, 'rate2k-q0 p50', 1.5))
  out.push(absCheck(agg, 'worker p99 at 2,000 msg/s', worker, 'rate2k-q0 p99', 1000, 'us', true))
  out.push(absCheck(agg, 'worker memory per idle connection', worker, 'idle rss', 4, 'KB'))
  out.push(absCheck(agg, 'worker CPU per connect', worker, 'idle cpu/conn', 50, 'us'))
  for (const s of CPU_SCENARIOS) out.push(ratioCheck(agg, `router own CPU/msg ${s} vs HAProxy`, router, haproxy, `${s} cpu.own`, 1.5))
  out.push(ratioCheck(agg, 'router own memory per connection vs HAProxy', router, haproxy, 'idle rss.own', 2))
  out.push(ratioCheck(agg, 'router own CPU per connect vs HAProxy', router, haproxy, 'idle cpu/conn.own', 2))
  for (const s of CPU_SCENARIOS) out.push(ratioCheck(agg, `cross-worker CPU/msg ${s} (both workers) vs one worker`, cluster, worker, `${s} cpu`, 2))
  return out
}

/** ringmq worker / reference for every figure both have (the "ratios" block of the report). */
export function ratiosAgainst(agg: Aggregate, ringmq: string, reference: string, keys: string[]): { key: string; ratio: number }[] {
  return keys.map((key) => ({ key, ratio: get(agg, ringmq, key) / get(agg, reference, key) })).filter((r) => Number.isFinite(r.ratio))
}

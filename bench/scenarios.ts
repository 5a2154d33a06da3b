// The scenario matrix. Quick (default, `npm run bench`) covers what the targets are
// judged on, with short windows; full (`--full`) adds QoS 2, MQTT 5.0, fan-in, fan-out,
// larger payloads and more idle connections. Names are stable: reports and checks key on them.

import type { IdleSpec } from './gen/idle.js'
import type { LoadSpec } from './gen/load.js'
import type { Qos, ProtocolVersion } from './gen/publish-frame.js'

export type Scenario = { kind: 'load'; spec: LoadSpec } | { kind: 'idle'; spec: IdleSpec }

export interface Timing {
  warmupMs: number
  durationMs: number
  drainMs: number
}

export const QUICK_TIMING: Timing = { warmupMs: 200, durationMs: 700, drainMs: 3000 }
export const FULL_TIMING: Timing = { warmupMs: 1000, durationMs: 4000, drainMs: 5000 }

/**
 * In-flight bound per publisher in closed loop. 100 x 8 publishers keeps every broker busy
 * on loopback while its queues stay short. QoS 2 uses 16: Mosquitto 2.0.11 (Debian 12)
 * stalls QoS 2 delivery once more than its max_inflight_messages (20) are queued for one
 * subscriber, an inflight-quota bug fixed upstream in 2.0.13.
 */
export function windowFor(qos: Qos): number {
  return qos === 2 ? 16 : 100
}

interface LoadOpts {
  qos: Qos
  protocol?: ProtocolVersion
  publishers?: number
  subscribers?: number
  layout?: LoadSpec['layout']
  payload?: number
  rate?: number
  window?: number
}

export function load(name: string, o: LoadOpts, t: Timing): Scenario {
  return { kind: 'load', spec: loadSpec(name, o, t) }
}

function loadSpec(name: string, o: LoadOpts, t: Timing): LoadSpec {
  const spec: LoadSpec = {
    name,
    publishers: o.publishers ?? 8,
    subscribers: o.subscribers ?? 8,
    layout: o.layout ?? 'pairs',
    qos: o.qos,
    protocol: o.protocol ?? 4,
    payload: o.payload ?? 64,
    mode: o.rate === undefined ? 'closed' : 'open',
    window: o.window ?? windowFor(o.qos),
    ...t,
  }
  if (o.rate !== undefined) spec.rate = o.rate
  return spec
}

export function idle(name: string, count: number, connectRate: number, protocol: ProtocolVersion = 4): Scenario {
  return { kind: 'idle', spec: { name, count, connectRate, protocol, settleMs: 300, warmCpu: true } }
}

/**
 * Unmeasured load a freshly started Node target (TargetDef.jit) runs before its first scenario:
 * a broker in production has long left start-up behind, and a Node server spends its first
 * seconds of load compiling its hot paths. A ringmq cluster's two workers and their compile
 * thread share one core: measured after 0.5 s of load its CPU per message at saturation was
 * 3.1 us, after 1.5 s 2.1, after 3 s 1.8. QoS 0 and QoS 1, because their paths differ. C
 * servers have nothing to compile and get the per-scenario warm-up only.
 */
export function targetWarmup(): LoadSpec[] {
  const t: Timing = { warmupMs: 0, durationMs: 800, drainMs: 3000 }
  return [loadSpec('warm-q0', { qos: 0 }, t), loadSpec('warm-q1', { qos: 1 }, t)]
}

/** The figures the targets are stated on: 8 -> 8 pairs, 64 B, MQTT 3.1.1. */
export function quickScenarios(t: Timing = QUICK_TIMING): Scenario[] {
  return [
    load('sat-q0', { qos: 0 }, t),
    load('sat-q1', { qos: 1 }, t),
    load('rate20k-q0', { qos: 0, rate: 20_000 }, t),
    load('rate20k-q1', { qos: 1, rate: 20_000 }, t),
    load('rate2k-q0', { qos: 0, rate: 2_000 }, t),
    idle('idle', 1000, 2000),
  ]
}

export function fullScenarios(t: Timing = FULL_TIMING): Scenario[] {
  return [
    ...quickScenarios(t).filter((s) => s.kind === 'load'),
    load('sat-q2', { qos: 2 }, t),
    load('sat-q0-v5', { qos: 0, protocol: 5 }, t),
    load('sat-q1-v5', { qos: 1, protocol: 5 }, t),
    load('sat-q2-v5', { qos: 2, protocol: 5 }, t),
    load('fanin-q0', { qos: 0, publishers: 8, subscribers: 1, layout: 'shared' }, t),
    load('fanin-q1', { qos: 1, publishers: 8, subscribers: 1, layout: 'shared' }, t),
    load('fanout-q0', { qos: 0, publishers: 1, subscribers: 8, layout: 'shared' }, t),
    load('fanout-q1', { qos: 1, publishers: 1, subscribers: 8, layout: 'shared' }, t),
    load('sat-q0-1k', { qos: 0, payload: 1024 }, t),
    load('sat-q0-16k', { qos: 0, payload: 16 * 1024 }, t),
    load('rate20k-q2', { qos: 2, rate: 20_000 }, t),
    load('rate2k-q1', { qos: 1, rate: 2_000 }, t),
    load('rate2k-q0-v5', { qos: 0, protocol: 5, rate: 2_000 }, t),
    // 9,000 idle connections: HAProxy and the router hold two descriptors each (limit 20,000)
    idle('idle', 9000, 3000),
    idle('idle-v5', 2000, 3000, 5),
    // open loop below the cluster's saturation: what a worker reads in one event-loop turn must
    // fit its forward queue. A short window: the generator cannot hold 200,000 msg/s for 5 s.
    // Last: it overloads the single-threaded references, and the Aedes process dies of it (a target
    // that dies loses the rest of its round).
    load('rate200k-q0', { qos: 0, rate: 200_000 }, { ...t, warmupMs: Math.min(t.warmupMs, 500), durationMs: Math.min(t.durationMs, 1500) }),
  ]
}

/**
 * Smoke matrix: every scenario kind for about a second, small counts. Shared-topic QoS 1
 * runs keep at most 18 messages in flight, below Mosquitto's max_inflight_messages (20).
 */
export function smokeScenarios(): Scenario[] {
  const t: Timing = { warmupMs: 100, durationMs: 700, drainMs: 5000 }
  return [
    load('sat-q0', { qos: 0, publishers: 2, subscribers: 2 }, t),
    load('sat-q1', { qos: 1, publishers: 2, subscribers: 2 }, t),
    load('sat-q2', { qos: 2, publishers: 2, subscribers: 2 }, t),
    load('sat-q1-v5', { qos: 1, protocol: 5, publishers: 2, subscribers: 2 }, t),
    load('fanin-q1', { qos: 1, publishers: 3, subscribers: 1, layout: 'shared', window: 6 }, t),
    load('fanout-q1', { qos: 1, publishers: 1, subscribers: 3, layout: 'shared', window: 6 }, t),
    load('rate2k-q1', { qos: 1, rate: 2_000, publishers: 2, subscribers: 2 }, t),
    idle('idle', 200, 2000),
  ]
}

// Idle connections: open `count` MQTT connections at a bounded connect rate, keep them idle,
// and read what they cost the server: connects per second achieved, resident memory per
// connection (VmRSS growth / count) and CPU per connect (server CPU over the connect phase /
// count). Connections beyond 10,000 use other loopback source addresses (127.0.0.2-9) so
// the 4-tuples never run short; the open-files limit (20,000) bounds the count anyway.

import { performance } from 'node:perf_hooks'
import { connectClient, type ClientPlacement } from './clients.js'
import type { MqttConn } from './mqtt-conn.js'
import type { ProtocolVersion } from './publish-frame.js'
import { RateSchedule } from './rate-schedule.js'
import { delay, type CpuSampler } from './load.js'

export interface IdleSpec {
  name: string
  count: number
  /** connects started per second */
  connectRate: number
  protocol: ProtocolVersion
  /** pause after the last CONNACK before memory is read, so lazy allocation has happened */
  settleMs: number
  /**
   * CPU per connect from a second, identical pass: the first (which gives memory) then warms
   * up a JIT-compiled server, whose first ~500 connects cost 3-4x a warm one
   */
  warmCpu?: boolean
}

/** Current RSS in KB per named process group. */
export type RssSampler = () => Record<string, number>

export interface IdleOptions {
  placement: ClientPlacement
  clientIdPrefix: string
  sampleCpu?: CpuSampler
  sampleRss?: RssSampler
  /** most connects awaiting CONNACK at once */
  maxPending?: number
  /**
   * With spec.warmCpu: connections opened and closed, unmeasured, between the memory pass and
   * the CPU pass, as fast as the server takes them. A Node server keeps getting cheaper per
   * connect for thousands of connects while V8 optimises its accept path (docs/bench.md).
   */
  warmConnects?: number
}

export interface IdleResult {
  kind: 'idle'
  spec: IdleSpec
  connected: number
  failed: number
  firstError: string | null
  connectMs: number
  connectsPerSec: number
  rssKbPerConn: Record<string, number>
  cpuUsPerConnect: Record<string, number>
}

const PER_SOURCE = 10_000
/** warm-up connects: open at most this many at once, at this rate */
const WARM_SLICE = 500
const WARM_RATE = 20_000

export function sourceAddressFor(i: number): string | undefined {
  return i < PER_SOURCE ? undefined : `127.0.0.${2 + (i % 8)}`
}

export async function runIdle(spec: IdleSpec, opts: IdleOptions): Promise<IdleResult> {
  if (spec.count >= 19_000) throw new RangeError('idle count must stay below the open-files limit (20,000)')
  const first = await measurePass(spec, opts, opts.clientIdPrefix)
  if (!spec.warmCpu) return first
  for (let done = 0; done < (opts.warmConnects ?? 0); done += WARM_SLICE) {
    const n = Math.min(WARM_SLICE, opts.warmConnects! - done)
    const { conns } = await connectAll({ ...spec, connectRate: WARM_RATE }, n, { ...opts, clientIdPrefix: `${opts.clientIdPrefix}-w${done}` })
    await Promise.all(conns.map((c) => c.close()))
  }
  // let the server finish the closes before the second window opens
  await delay(200)
  // the settle is for memory (lazy allocation); CPU needs only the last CONNACKs' writes done
  const second = await measurePass({ ...spec, settleMs: Math.min(spec.settleMs, 100) }, { ...opts, sampleRss: undefined }, `${opts.clientIdPrefix}-2`)
  return { ...first, cpuUsPerConnect: second.cpuUsPerConnect, failed: first.failed + second.failed, firstError: first.firstError ?? second.firstError }
}

/** Opens `count` connections, reads what they cost, closes them. */
async function measurePass(spec: IdleSpec, opts: IdleOptions, clientIdPrefix: string): Promise<IdleResult> {
  const rss0 = opts.sampleRss?.() ?? {}
  const cpu0 = opts.sampleCpu?.() ?? {}
  const t0 = performance.now()
  let conns: MqttConn[] = []
  try {
    const r = await connectAll(spec, spec.count, { ...opts, clientIdPrefix }, t0)
    conns = r.conns
    const connectMs = performance.now() - t0
    await delay(spec.settleMs)
    const cpu1 = opts.sampleCpu?.() ?? {}
    const rss1 = opts.sampleRss?.() ?? {}
    const n = conns.length
    const per = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
      Object.fromEntries(Object.keys(b).map((k) => [k, n > 0 ? (b[k]! - (a[k] ?? 0)) / n : NaN]))
    return {
      kind: 'idle',
      spec: { ...spec },
      connected: n,
      failed: r.failed,
      firstError: r.firstError,
      connectMs,
      connectsPerSec: (n * 1000) / connectMs,
      rssKbPerConn: per(rss0, rss1),
      cpuUsPerConnect: per(cpu0, cpu1),
    }
  } finally {
    // close in slices: thousands of simultaneous FINs are a burst the next scenario would feel
    for (let i = 0; i < conns.length; i += 500) await Promise.all(conns.slice(i, i + 500).map((c) => c.close()))
  }
}

/** Opens `count` connections at the spec's rate, at most `maxPending` awaiting CONNACK. */
async function connectAll(spec: IdleSpec, count: number, opts: IdleOptions, t0 = performance.now()): Promise<{ conns: MqttConn[]; failed: number; firstError: string | null }> {
  const conns: MqttConn[] = []
  const maxPending = opts.maxPending ?? 256
  let pending = 0
  let failed = 0
  let firstError: string | null = null
  const placement: ClientPlacement = {
    endpoint: (role, i) => ({ ...opts.placement.endpoint(role, i), localAddress: sourceAddressFor(i) }),
  }
  const schedule = new RateSchedule(spec.connectRate, t0)
  let started = 0
  let wake: (() => void) | null = null
  const one = async (i: number): Promise<void> => {
    pending++
    try {
      conns.push(await connectClient(placement, 'idle', i, spec.protocol, opts.clientIdPrefix))
    } catch (err) {
      failed++
      firstError ??= (err as Error).message
    } finally {
      pending--
      wake?.()
    }
  }
  const all: Promise<void>[] = []
  while (started < count) {
    const due = Math.min(count - started, schedule.take(performance.now()), maxPending - pending)
    for (let k = 0; k < due; k++) all.push(one(started++))
    if (started >= count) break
    // wait for the schedule or for a pending connect to finish, whichever first
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(1, schedule.msUntilNext(performance.now())))
      wake = () => {
        clearTimeout(t)
        wake = null
        resolve()
      }
    })
  }
  await Promise.all(all)
  return { conns, failed, firstError }
}

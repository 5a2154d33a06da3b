// Throughput and latency load: N publishers, M subscribers, one process, raw sockets.
//
// closed loop: each publisher keeps at most `window` messages in flight, where in flight means
//   sent and not yet delivered to all its subscribers (and, for QoS 1/2, not yet acknowledged).
//   Without that bound a QoS 0 publisher only measures how fast the broker can accept bytes into
//   its buffers, not how fast it delivers them; with it, throughput is what the broker delivers.
// open loop: messages are sent on a fixed schedule (RateSchedule) whatever the broker does;
//   latency is receive time minus the send timestamp carried in the payload (same clock).
//
// Both modes: prime (every publisher -> subscriber path has carried a message; cluster routes
// have propagated), warm up, measure over a window (deliveries, latency, broker CPU sampled at
// the window's edges), stop sending, then drain and check that every message arrived once.

import { performance } from 'node:perf_hooks'
import { AckBatch } from './ack-batch.js'
import { connectClient, type ClientPlacement } from './clients.js'
import type { MqttConn } from './mqtt-conn.js'
import type { FrameHandler } from './framer.js'
import { Histogram, type LatencySummary } from './histogram.js'
import { effectivePayloadSize, OFF_PUB, OFF_SEQ, OFF_SENT_AT, SEQ_PRIME } from './payload.js'
import { payloadStart, publishPid, publishTemplate, stampPublish, type ProtocolVersion, type PublishTemplate, type Qos } from './publish-frame.js'
import { RateSchedule, spreadRoundRobin } from './rate-schedule.js'

export type Layout = 'pairs' | 'shared'

export interface LoadSpec {
  name: string
  publishers: number
  subscribers: number
  /** pairs: publisher i -> topic i -> subscriber i; shared: every publisher -> one topic -> every subscriber */
  layout: Layout
  qos: Qos
  protocol: ProtocolVersion
  payload: number
  mode: 'closed' | 'open'
  /** open loop: delivered messages per second (publish rate = rate / fan-out) */
  rate?: number
  /** closed loop: in-flight bound per publisher */
  window: number
  warmupMs: number
  durationMs: number
  /** longest wait for in-flight messages once sending stopped */
  drainMs: number
}

/** Cumulative CPU microseconds per named process group (e.g. {total, own}). */
export type CpuSampler = () => Record<string, number>

export interface LoadOptions {
  placement: ClientPlacement
  clientIdPrefix: string
  sampleCpu?: CpuSampler
  primeTimeoutMs?: number
}

export interface LoadResult {
  kind: 'load'
  spec: LoadSpec
  windowMs: number
  /** measured: deliveries per second inside the window */
  deliveredPerSec: number
  sentPerSec: number
  latency: LatencySummary
  /** broker CPU over the window, microseconds, per group */
  cpuUs: Record<string, number>
  /** broker CPU per delivered message inside the window, microseconds, per group */
  cpuUsPerMsg: Record<string, number>
  /** whole run (warm-up, window, drain), priming excluded */
  sent: number
  expected: number
  delivered: number
  duplicates: number
  /** messages skipped in a publisher's sequence when a later one arrived (lost or reordered) */
  gaps: number
  missing: number
  /** open loop: largest delay of the generator behind its schedule */
  maxLagMs: number
  /** generator process CPU over the window, % of one core (near 100 = generator-bound) */
  generatorCpuPct: number
}

/** No message crossed some publisher -> subscriber path during priming: the target does not deliver. */
export class PrimeTimeout extends Error {}

const BATCH = 64
const PID_LIMIT = 65535

class Pub {
  sent = 0
  primeSent = 0
  acked = 0
  /** deliveries of this publisher's messages, summed over subscribers */
  delivered = 0
  blocked = false
  #pid = 0
  readonly frameLen: number

  constructor(
    readonly index: number,
    readonly conn: MqttConn,
    readonly tpl: PublishTemplate,
  ) {
    this.frameLen = tpl.frame.length
  }

  unacked(): number {
    return this.sent + this.primeSent - this.acked
  }

  send(n: number, prime: boolean, onDrain: () => void): void {
    const out = Buffer.allocUnsafe(n * this.frameLen)
    const now = performance.now()
    for (let i = 0; i < n; i++) {
      this.#pid = this.#pid === PID_LIMIT ? 1 : this.#pid + 1
      stampPublish(this.tpl, out, i * this.frameLen, this.#pid, prime ? SEQ_PRIME : this.sent + i, now)
    }
    if (prime) this.primeSent += n
    else this.sent += n
    // open loop keeps writing while back-pressured: one drain listener is enough
    if (!this.conn.socket.write(out) && !this.blocked) {
      this.blocked = true
      this.conn.socket.once('drain', () => {
        this.blocked = false
        onDrain()
      })
    }
  }
}

export async function runLoad(spec: LoadSpec, opts: LoadOptions): Promise<LoadResult> {
  if (spec.layout === 'pairs' && spec.publishers !== spec.subscribers) throw new RangeError('pairs layout needs as many publishers as subscribers')
  if (spec.mode === 'open' && !(spec.rate! > 0)) throw new RangeError('open loop needs a rate')
  const fanout = spec.layout === 'shared' ? spec.subscribers : 1
  const payloadSize = effectivePayloadSize(spec.payload)
  const topicOf = (i: number): string => (spec.layout === 'shared' ? 'bench/shared' : `bench/pair/${i}`)
  const conns: MqttConn[] = []
  try {
    // subscribers first, so that nothing published is lost for lack of a subscription
    const subConns = await Promise.all(
      Array.from({ length: spec.subscribers }, async (_, i) => {
        const c = await connectClient(opts.placement, 'sub', i, spec.protocol, opts.clientIdPrefix)
        conns.push(c)
        await c.subscribe(topicOf(i), spec.qos, 1)
        return c
      }),
    )
    const pubs = await Promise.all(
      Array.from({ length: spec.publishers }, async (_, i) => {
        const c = await connectClient(opts.placement, 'pub', i, spec.protocol, opts.clientIdPrefix)
        conns.push(c)
        return new Pub(i, c, publishTemplate(topicOf(i), spec.qos, spec.protocol, payloadSize, i))
      }),
    )
    return await drive(spec, opts, pubs, subConns, fanout)
  } finally {
    await Promise.all(conns.map((c) => c.close()))
  }
}

async function drive(spec: LoadSpec, opts: LoadOptions, pubs: Pub[], subConns: MqttConn[], fanout: number): Promise<LoadResult> {
  const N = pubs.length
  const hist = new Histogram()
  let phase: 'prime' | 'run' | 'drain' = 'prime'
  let winStart = Infinity
  let winEnd = Infinity
  let deliveredTotal = 0
  let duplicates = 0
  let gaps = 0
  // primeSeen[sub * N + pub]: that path has carried a message
  const primeSeen = new Uint8Array(subConns.length * N)
  let pumpScheduled = false

  const pumpAll = (): void => {
    pumpScheduled = false
    if (phase !== 'run' || spec.mode !== 'closed') return
    for (const p of pubs) pumpClosed(p)
  }
  const schedulePump = (): void => {
    if (!pumpScheduled && phase === 'run' && spec.mode === 'closed') {
      pumpScheduled = true
      setImmediate(pumpAll)
    }
  }
  // Refill only when a quarter of the window is free, so writes carry batches, not single
  // messages (the generator must stay cheaper per message than the broker).
  const refillAt = Math.max(1, Math.floor(spec.window / 4))
  const pumpClosed = (p: Pub): void => {
    while (!p.blocked) {
      let room = spec.window - (p.sent - Math.floor(p.delivered / fanout))
      if (spec.qos > 0) room = Math.min(room, spec.window - p.unacked())
      const idle = p.sent * fanout === p.delivered
      if (room <= 0 || (room < refillAt && !idle)) return
      p.send(Math.min(room, BATCH), false, schedulePump)
    }
  }

  // --- subscriber side: count, check order, measure latency, acknowledge -------------------
  subConns.forEach((conn, s) => {
    const next = new Uint32Array(N) // next expected seq per publisher
    const protocol = spec.protocol
    let now = -1
    const acks = new AckBatch(conn.socket)
    const endChunk = (): void => {
      now = -1
      schedulePump()
    }
    const onFrame: FrameHandler = (buf, byte0, bs, be) => {
      if (now < 0) {
        now = performance.now()
        queueMicrotask(endChunk)
      }
      const type = byte0 >> 4
      if (type === 3) {
        const qos = (byte0 >> 1) & 3
        if (qos === 1) acks.push(0x40, publishPid(buf, bs)) // PUBACK
        else if (qos === 2) acks.push(0x50, publishPid(buf, bs)) // PUBREC
        const p = payloadStart(buf, byte0, bs, protocol)
        const pub = buf.readUInt32BE(p + OFF_PUB)
        const seq = buf.readUInt32BE(p + OFF_SEQ)
        if (pub >= N) return
        if (seq === SEQ_PRIME) {
          primeSeen[s * N + pub] = 1
          return
        }
        deliveredTotal++
        const exp = next[pub]!
        if (seq < exp) {
          duplicates++
          return
        }
        if (seq > exp) gaps += seq - exp
        next[pub] = seq + 1
        pubs[pub]!.delivered++
        const sentAt = buf.readDoubleLE(p + OFF_SENT_AT)
        if (sentAt >= winStart && sentAt < winEnd) hist.record((now - sentAt) * 1000)
      } else if (type === 6) {
        acks.push(0x70, buf.readUInt16BE(bs)) // PUBREL -> PUBCOMP
      } else {
        conn.control(buf, byte0, bs, be)
      }
    }
    conn.setHotHandler(onFrame)
  })

  // --- publisher side: acknowledgements -----------------------------------------------------
  for (const p of pubs) {
    const conn = p.conn
    const rels = new AckBatch(conn.socket)
    let inChunk = false
    const endChunk = (): void => {
      inChunk = false
      schedulePump()
    }
    conn.setHotHandler((buf, byte0, bs, be) => {
      if (!inChunk) {
        inChunk = true
        queueMicrotask(endChunk)
      }
      const type = byte0 >> 4
      if (type === 4 || type === 7) p.acked++ // PUBACK (QoS 1), PUBCOMP (QoS 2)
      else if (type === 5) rels.push(0x62, buf.readUInt16BE(bs)) // PUBREC -> PUBREL
      else conn.control(buf, byte0, bs, be)
    })
  }

  // --- prime: every path carries a message before anything is measured ---------------------
  const paths = spec.layout === 'shared' ? subConns.map((_, s) => pubs.map((p) => s * N + p.index)).flat() : pubs.map((p) => p.index * N + p.index)
  const primeDeadline = performance.now() + (opts.primeTimeoutMs ?? 10_000)
  while (!paths.every((k) => primeSeen[k] === 1)) {
    if (performance.now() > primeDeadline) {
      const k = paths.find((x) => primeSeen[x] !== 1)!
      throw new PrimeTimeout(`no message from publisher ${k % N} reached subscriber ${Math.floor(k / N)} within ${opts.primeTimeoutMs ?? 10_000} ms`)
    }
    for (const p of pubs) if (!p.blocked && p.unacked() < PID_LIMIT / 2) p.send(1, true, () => {})
    await delay(20)
    checkAlive(pubs, subConns)
  }

  // --- run ------------------------------------------------------------------------------------
  phase = 'run'
  const t0 = performance.now()
  let schedule: RateSchedule | null = null
  let timer: NodeJS.Timeout | null = null
  if (spec.mode === 'closed') {
    pumpAll()
  } else {
    schedule = new RateSchedule(spec.rate! / fanout, t0)
    const share = new Int32Array(N)
    let cursor = 0
    const tick = (): void => {
      if (phase !== 'run') return
      const now = performance.now()
      const n = schedule!.take(now)
      if (n > 0) {
        cursor = spreadRoundRobin(n, N, cursor, share)
        // a publisher that is back-pressured or has no packet identifiers left still gets its
        // share written (the socket buffers it): the schedule is the schedule
        for (let i = 0; i < N; i++) if (share[i]! > 0 && pubs[i]!.unacked() < PID_LIMIT - BATCH * 4) pubs[i]!.send(share[i]!, false, () => {})
      }
      timer = setTimeout(tick, schedule!.msUntilNext(performance.now()))
    }
    tick()
  }

  await delay(spec.warmupMs)
  checkAlive(pubs, subConns)
  const cpu0 = opts.sampleCpu?.() ?? {}
  const d0 = deliveredTotal - duplicates
  const s0 = sumSent(pubs)
  const g0 = process.cpuUsage()
  winStart = performance.now()
  await delay(spec.durationMs)
  winEnd = performance.now()
  const g1 = process.cpuUsage(g0)
  const cpu1 = opts.sampleCpu?.() ?? {}
  const d1 = deliveredTotal - duplicates
  const s1 = sumSent(pubs)
  phase = 'drain'
  if (timer) clearTimeout(timer)

  // --- drain: wait until every sent message has arrived everywhere (bounded) -----------------
  const drainDeadline = performance.now() + spec.drainMs
  const done = (): boolean => pubs.every((p) => p.delivered === p.sent * fanout && (spec.qos === 0 || p.acked === p.sent + p.primeSent))
  while (!done() && performance.now() < drainDeadline && !pubs.some((p) => p.conn.closed)) await delay(10)

  const windowMs = winEnd - winStart
  const cpuUs: Record<string, number> = {}
  const cpuUsPerMsg: Record<string, number> = {}
  for (const k of Object.keys(cpu1)) {
    cpuUs[k] = cpu1[k]! - (cpu0[k] ?? 0)
    cpuUsPerMsg[k] = d1 > d0 ? cpuUs[k]! / (d1 - d0) : NaN
  }
  const sent = sumSent(pubs)
  const expected = sent * fanout
  const unique = pubs.reduce((a, p) => a + p.delivered, 0)
  return {
    kind: 'load',
    spec: { ...spec },
    windowMs,
    deliveredPerSec: ((d1 - d0) * 1000) / windowMs,
    sentPerSec: ((s1 - s0) * 1000) / windowMs,
    latency: hist.summary(),
    cpuUs,
    cpuUsPerMsg,
    sent,
    expected,
    delivered: unique,
    duplicates,
    gaps,
    missing: Math.max(0, expected - unique),
    maxLagMs: schedule?.maxLagMs ?? 0,
    generatorCpuPct: ((g1.user + g1.system) / 1000 / windowMs) * 100,
  }
}

function sumSent(pubs: Pub[]): number {
  let s = 0
  for (const p of pubs) s += p.sent
  return s
}

function checkAlive(pubs: Pub[], subs: MqttConn[]): void {
  const dead = [...pubs.map((p) => p.conn), ...subs].find((c) => c.closed)
  if (dead) throw new Error(`a client connection closed during the run (${dead.socket.remoteAddress}:${dead.socket.remotePort})`)
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

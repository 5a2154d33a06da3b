import { describe, expect, it } from 'vitest'
import type { IdleResult } from '../../bench/gen/idle.js'
import type { LoadResult, LoadSpec } from '../../bench/gen/load.js'
import { evaluateTargets, ratiosAgainst } from '../../bench/report/checks.js'
import { renderMarkdown, type RunInfo } from '../../bench/report/markdown.js'
import { aggregate, anomalies, figureKeys, figuresOf, median, stat, type TargetRound } from '../../bench/report/summary.js'
import { renderSvg } from '../../bench/report/svg.js'

const spec = (name: string, mode: 'open' | 'closed' = 'closed', qos: 0 | 1 = 0): LoadSpec => ({
  name, publishers: 8, subscribers: 8, layout: 'pairs', qos, protocol: 4, payload: 64, mode, window: 100, warmupMs: 0, durationMs: 1000, drainMs: 0,
  ...(mode === 'open' ? { rate: 2000 } : {}),
})

function load(name: string, msgs: number, cpu: number, own?: number, p50 = NaN, mode: 'open' | 'closed' = 'closed', missing = 0): LoadResult {
  return {
    kind: 'load', spec: spec(name, mode), windowMs: 1000, deliveredPerSec: msgs, sentPerSec: msgs,
    latency: { count: 10, minUs: 1, meanUs: p50, p50Us: p50, p99Us: p50 * 4, p999Us: p50 * 8, maxUs: p50 * 9 },
    cpuUs: { total: cpu * msgs }, cpuUsPerMsg: own === undefined ? { total: cpu } : { total: cpu, own },
    sent: msgs, expected: msgs, delivered: msgs - missing, duplicates: 0, gaps: 0, missing, maxLagMs: 0, generatorCpuPct: 50,
  }
}

function idle(rss: number, cpu: number, own?: { rss: number; cpu: number }): IdleResult {
  return {
    kind: 'idle', spec: { name: 'idle', count: 1000, connectRate: 1000, protocol: 4, settleMs: 0 }, connected: 1000, failed: 0, firstError: null,
    connectMs: 1000, connectsPerSec: 1000,
    rssKbPerConn: own ? { total: rss, own: own.rss } : { total: rss }, cpuUsPerConnect: own ? { total: cpu, own: own.cpu } : { total: cpu },
  }
}

/** three rounds of one target, the middle value given, the others around it */
function rounds(target: string, make: (scale: number) => (LoadResult | IdleResult)[]): TargetRound[] {
  return [0.9, 1, 1.2].map((k, round) => ({ target, round, results: make(k) }))
}

const standard = (cpu0: number, p50: number, rss: number, cpuConn: number, own?: number) => (k: number) => [
  load('sat-q0', 100_000 / k, cpu0 * k, own === undefined ? undefined : own * k),
  load('sat-q1', 50_000 / k, 2 * cpu0 * k, own === undefined ? undefined : 2 * own * k),
  load('rate20k-q0', 20_000, 1.5 * cpu0 * k, own === undefined ? undefined : 1.5 * own * k),
  load('rate20k-q1', 20_000, 2.5 * cpu0 * k, own === undefined ? undefined : 2.5 * own * k),
  load('rate2k-q0', 2_000, 3 * cpu0 * k, own === undefined ? undefined : 3 * own * k, p50 * k, 'open'),
  idle(rss * k, cpuConn * k, own === undefined ? undefined : { rss: rss * k / 2, cpu: cpuConn * k / 2 }),
]

describe('bench result summary', () => {
  it('computes median, min and max over finite values', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(Number.isNaN(median([]))).toBe(true)
    expect(stat([5, NaN, 1, 9])).toEqual({ median: 5, min: 1, max: 9, n: 3 })
  })

  it('turns results into keyed figures, latency only for open loop, own cost only for proxies', () => {
    const closed = figuresOf(load('sat-q0', 1000, 4))
    expect(closed).toEqual({ 'sat-q0 msg/s': 1000, 'sat-q0 cpu': 4 })
    const open = figuresOf(load('rate2k-q0', 2000, 4, 1, 60, 'open'))
    expect(open['rate2k-q0 p50']).toBe(60)
    expect(open['rate2k-q0 p99']).toBe(240)
    expect(open['rate2k-q0 cpu.own']).toBe(1)
    expect(figuresOf(idle(0.7, 14, { rss: 3.5, cpu: 21 }))).toEqual({
      'idle conn/s': 1000, 'idle rss': 0.7, 'idle cpu/conn': 14, 'idle rss.own': 3.5, 'idle cpu/conn.own': 21,
    })
    expect(figuresOf({ kind: 'error', scenario: 'x', error: 'boom' })).toEqual({})
  })

  it('aggregates rounds per target into medians with min-max', () => {
    const agg = aggregate(rounds('mosquitto', standard(4, 60, 0.7, 15)))
    const s = agg.get('mosquitto')!.get('sat-q0 cpu')!
    expect(s.median).toBeCloseTo(4, 9)
    expect(s.min).toBeCloseTo(3.6, 9)
    expect(s.max).toBeCloseTo(4.8, 9)
    expect(s.n).toBe(3)
    expect(figureKeys(agg, ['sat-q0', 'sat-q1', 'rate20k-q0', 'rate20k-q1', 'rate2k-q0', 'idle']).slice(0, 3)).toEqual(['sat-q0 msg/s', 'sat-q0 cpu', 'sat-q1 msg/s'])
  })

  it('evaluates the issue targets as ratios of medians, PASS/FAIL/SKIP', () => {
    const all = [
      ...rounds('mosquitto', standard(4, 60, 0.7, 15)),
      ...rounds('aedes', standard(7, 110, 12, 150)),
      ...rounds('haproxy', standard(5, 80, 4, 35, 1)),
      ...rounds('ringmq-worker', standard(4.4, 100, 3, 40)), // 1.1x Mosquitto cpu, 1.67x p50
    ]
    const checks = evaluateTargets(aggregate(all))
    const by = (what: string) => checks.find((c) => c.what === what)!
    expect(by('worker CPU/msg sat-q0 vs Mosquitto')).toMatchObject({ status: 'PASS', unit: 'ratio' })
    expect(by('worker CPU/msg sat-q0 vs Mosquitto').value).toBeCloseTo(1.1, 9)
    expect(by('worker CPU/msg sat-q0 vs Aedes').value).toBeCloseTo(4.4 / 7, 9)
    expect(by('worker CPU/msg sat-q0 vs Aedes').status).toBe('PASS')
    expect(by('worker p50 at 2,000 msg/s vs Mosquitto').status).toBe('FAIL')
    expect(by('worker p99 at 2,000 msg/s')).toMatchObject({ status: 'PASS', value: 400, unit: 'us' })
    expect(by('worker memory per idle connection')).toMatchObject({ status: 'PASS', value: 3 })
    expect(by('worker CPU per connect')).toMatchObject({ status: 'PASS', value: 40 })
    // no router, no cluster in this run: their targets are skipped with the reason, never passed
    const router = by('router own CPU/msg sat-q0 vs HAProxy')
    expect(router.status).toBe('SKIP')
    expect(router.why).toContain('ringmq-router')
    expect(checks.filter((c) => c.what.startsWith('cross-worker')).every((c) => c.status === 'SKIP')).toBe(true)
  })

  it('judges the router on its own cost and the cluster against one worker', () => {
    const all = [
      ...rounds('haproxy', standard(5, 80, 4, 35, 1)),
      ...rounds('ringmq-router', standard(6, 90, 8, 80, 2)), // own: 2x HAProxy's cpu, rss 4/2 = 2x, cpu/conn 40/17.5
      ...rounds('ringmq-worker', standard(4, 100, 3, 40)),
      ...rounds('ringmq-cluster', standard(7, 100, 3, 40)),
    ]
    const checks = evaluateTargets(aggregate(all))
    const by = (what: string) => checks.find((c) => c.what === what)!
    expect(by('router own CPU/msg sat-q0 vs HAProxy')).toMatchObject({ status: 'FAIL' })
    expect(by('router own CPU/msg sat-q0 vs HAProxy').value).toBeCloseTo(2, 9)
    expect(by('router own memory per connection vs HAProxy').value).toBeCloseTo(2, 9)
    expect(by('router own memory per connection vs HAProxy').status).toBe('PASS')
    expect(by('router own CPU per connect vs HAProxy').status).toBe('FAIL')
    expect(by('cross-worker CPU/msg sat-q0 (both workers) vs one worker').value).toBeCloseTo(1.75, 9)
    expect(by('cross-worker CPU/msg sat-q0 (both workers) vs one worker').status).toBe('PASS')
  })

  it('lists ratios, anomalies, and renders Markdown and SVG with every measured target', () => {
    const all: TargetRound[] = [
      ...rounds('mosquitto', standard(4, 60, 0.7, 15)),
      ...rounds('ringmq-worker', standard(8, 100, 3, 40)),
      { target: 'aedes', round: 0, error: 'failed to start: boom', results: [] },
      { target: 'ringmq-worker', round: 3, results: [load('sat-q1', 10, 1, undefined, NaN, 'closed', 5)] },
    ]
    const agg = aggregate(all)
    const keys = figureKeys(agg, ['sat-q0'])
    const r = ratiosAgainst(agg, 'ringmq-worker', 'mosquitto', keys)
    expect(r.find((x) => x.key === 'sat-q0 cpu')!.ratio).toBeCloseTo(2, 9)
    const busyGen = (serverUs: number): TargetRound => {
      const r = load('sat-q0', 1000, 1)
      r.generatorCpuPct = 95
      r.cpuUs = { total: serverUs } // window 1000 ms
      return { target: 'aedes', round: 1, results: [r] }
    }
    expect(anomalies([busyGen(500_000)])).toEqual(['aedes round 2 sat-q0: generator at 95% CPU while the server used 50%, the figure is generator-bound'])
    expect(anomalies([busyGen(990_000)])).toEqual([]) // both saturated: the server is the bound
    const an = anomalies(all)
    expect(an).toContain('aedes round 1: failed to start: boom')
    expect(an.some((a) => a.includes('5 of 10 messages not delivered'))).toBe(true)
    const info: RunInfo = {
      command: 'npm run bench', mode: 'quick', startedAt: '2026-01-01T00:00:00Z', elapsedS: 1, rounds: 3, roundsPlanned: 3,
      pinning: 'pinned', environment: ['env'], targets: [{ id: 'mosquitto', label: 'M' }, { id: 'ringmq-worker', label: 'W' }],
      skipped: [{ id: 'ringmq-router', why: 'not built' }], scenarioOrder: ['sat-q0', 'sat-q1'], notes: ['n'],
    }
    const md = renderMarkdown(info, agg, all)
    expect(md).toContain('| figure | unit | mosquitto | ringmq-worker |')
    expect(md).toContain('skipped **ringmq-router**: not built')
    expect(md).toMatch(/\| sat-q0 cpu \| us\/msg \| 4\.00 \(3\.60-4\.80\) \| 8\.00 \(7\.20-9\.60\) \|/)
    expect(md).toContain('| worker CPU/msg sat-q0 vs Mosquitto | 2.00x | <= 1.2x | **FAIL** |')
    const svg = renderSvg(agg, ['mosquitto', 'ringmq-worker'], 'test')
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.endsWith('</svg>')).toBe(true)
    expect(svg).toContain('sat-q0 cpu (us/msg)')
    expect((svg.match(/<rect /g) ?? []).length).toBeGreaterThan(10)
  })
})

describe('bench profile summary', () => {
  it('ranks functions by self time weighted by sample intervals', async () => {
    const { topSelf } = await import('../../bench/report/profile-top.js')
    const frame = (functionName: string) => ({ functionName, url: 'file:///x/dist/worker/a.js', lineNumber: 9 })
    const profile = {
      nodes: [{ id: 1, callFrame: frame('(root)') }, { id: 2, callFrame: frame('hot') }, { id: 3, callFrame: frame('cold') }],
      samples: [2, 2, 3, 2],
      timeDeltas: [0, 3000, 3000, 1000, 1000], // us; sample i lasts until sample i+1
      startTime: 0,
      endTime: 8000,
    }
    const top = topSelf(profile, 5)
    expect(top[0]).toMatchObject({ name: 'hot dist/worker/a.js:10', selfMs: 7 })
    expect(top[1]).toMatchObject({ name: 'cold dist/worker/a.js:10', selfMs: 1 })
    expect(top[0]!.share).toBeCloseTo(7 / 8, 9)
  })
})

describe('bench README section', () => {
  it('shows headline medians, verdicts and what was not measured', async () => {
    const { renderReadmeSection } = await import('../../bench/report/markdown.js')
    const all = [...rounds('mosquitto', standard(4, 60, 0.7, 15)), ...rounds('ringmq-worker', standard(4.4, 100, 3, 40))]
    const info: RunInfo = {
      command: 'npm run bench', mode: 'quick', startedAt: '2026-01-01T00:00:00Z', elapsedS: 1, rounds: 3, roundsPlanned: 3,
      pinning: 'pinned', environment: [], targets: [{ id: 'mosquitto', label: 'M' }, { id: 'ringmq-worker', label: 'W' }],
      skipped: [{ id: 'ringmq-cluster', why: 'no fabric' }], scenarioOrder: [], notes: [],
    }
    const withCluster: TargetRound[] = [...all, { target: 'ringmq-cluster', round: 0, results: [{ kind: 'error', scenario: 'sat-q0', error: 'nothing delivered' }] }]
    info.targets.push({ id: 'ringmq-cluster', label: 'C' })
    info.skipped = [{ id: 'ringmq-router', why: 'not built' }]
    const md = renderReadmeSection(info, aggregate(withCluster), ['sat-q0 cpu', 'idle rss'], withCluster)
    expect(md).toContain('Measured by `npm run bench`')
    expect(md).toContain('| sat-q0 cpu | us/msg | 4.00 | 4.40 |')
    expect(md).toContain('| worker CPU/msg sat-q0 vs Mosquitto | 1.10x | <= 1.2x | **PASS** |')
    expect(md).not.toContain('SKIP**')
    expect(md).toContain('Not measured: **ringmq-router** (not built).')
    expect(md).toContain('Not measured: **ringmq-cluster** (nothing delivered).')
    expect(md).toContain('`bench/results/quick.md`')
  })
})

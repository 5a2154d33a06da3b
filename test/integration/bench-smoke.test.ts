// Smoke test of the bench harness: every scenario kind for about a second against a ringmq
// worker, Mosquitto and Aedes (real processes on loopback), and the QoS 1 ones across a
// 3-worker cluster, checking the result shape and that every message was delivered exactly
// once. No timing thresholds: figures are only required to be present and finite. Needs `npx tsc -p .` first (targets run dist/).

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runIdle, type IdleResult } from '../../bench/gen/idle.js'
import { runLoad, type LoadResult } from '../../bench/gen/load.js'
import { cpuUs, rssKb } from '../../bench/proc/proc-stat.js'
import { smokeScenarios } from '../../bench/scenarios.js'
import { aedesTarget } from '../../bench/targets/aedes.js'
import { mosquittoTarget } from '../../bench/targets/mosquitto.js'
import { clusterTarget, workerTarget } from '../../bench/targets/ringmq.js'
import type { RunningTarget, TargetDef } from '../../bench/targets/target.js'

function groupSampler(rt: RunningTarget, f: (pid: number) => number) {
  return (): Record<string, number> => ({ total: rt.groups.total.reduce((a, p) => a + f(p.pid), 0) })
}

/**
 * Losses that are the reference broker's, not the harness's: Mosquitto 2.0.11 drops some QoS 1
 * messages to a fan-in subscriber under load, logging "Outgoing messages are being dropped
 * for client ...", even with 18 messages in flight. There the accounting must still add up.
 */
const KNOWN_LOSSES: Record<string, string[]> = { mosquitto: ['fanin-q1'] }

function expectLoadShape(r: LoadResult, lossTolerated = false): void {
  expect(r.kind).toBe('load')
  expect(r.windowMs).toBeGreaterThan(0)
  expect(r.sent).toBeGreaterThan(0)
  expect(r.deliveredPerSec).toBeGreaterThan(0)
  expect(Number.isFinite(r.cpuUsPerMsg.total)).toBe(true)
  expect(r.cpuUsPerMsg.total).toBeGreaterThan(0)
  expect(r.generatorCpuPct).toBeGreaterThan(0)
  const fanout = r.spec.layout === 'shared' ? r.spec.subscribers : 1
  // every message delivered, to every subscriber, once
  expect(r.expected).toBe(r.sent * fanout)
  expect(r.duplicates).toBe(0)
  if (lossTolerated) {
    expect(r.delivered + r.missing).toBe(r.expected)
    expect(r.missing).toBeLessThan(r.expected / 100)
  } else {
    expect(r.delivered).toBe(r.expected)
    expect(r.missing).toBe(0)
  }
  if (r.spec.mode === 'open') {
    expect(r.latency.count).toBeGreaterThan(0)
    expect(r.latency.p50Us).toBeGreaterThan(0)
    expect(r.latency.p99Us).toBeGreaterThanOrEqual(r.latency.p50Us)
    expect(r.latency.p999Us).toBeGreaterThanOrEqual(r.latency.p99Us)
  }
}

function expectIdleShape(r: IdleResult): void {
  expect(r.kind).toBe('idle')
  expect(r.failed).toBe(0)
  expect(r.connected).toBe(r.spec.count)
  expect(r.connectsPerSec).toBeGreaterThan(0)
  expect(Number.isFinite(r.rssKbPerConn.total)).toBe(true)
  expect(r.cpuUsPerConnect.total).toBeGreaterThan(0)
}

// the cluster (publishers on w1, subscribers on w2) runs the load scenarios at QoS 1 only:
// what it adds is the cross-worker path, and QoS 1 makes any loss on it a failure
const targets: { target: TargetDef; only?: (name: string) => boolean }[] = [
  { target: workerTarget },
  { target: mosquittoTarget },
  { target: aedesTarget },
  { target: clusterTarget, only: (name) => ['sat-q1', 'fanin-q1', 'rate2k-q1'].includes(name) },
]

for (const { target, only } of targets) {
  describe(`bench smoke: ${target.id}`, () => {
    let rt: RunningTarget
    let dir: string
    beforeAll(async () => {
      const why = await target.probe()
      if (why) throw new Error(`${target.id} cannot run: ${why}`)
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmq-bench-smoke-'))
      rt = await target.start({ dir })
    })
    afterAll(async () => {
      await rt?.stop()
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
    })

    for (const sc of smokeScenarios().filter((x) => target.protocols.includes(x.spec.protocol) && (only?.(x.spec.name) ?? true))) {
      it(`${sc.spec.name} delivers every message and reports every figure`, async () => {
        const base = { placement: rt.placement, clientIdPrefix: `smoke-${sc.spec.name}`, sampleCpu: groupSampler(rt, cpuUs) }
        if (sc.kind === 'load') expectLoadShape(await runLoad(sc.spec, base), KNOWN_LOSSES[target.id]?.includes(sc.spec.name))
        else expectIdleShape(await runIdle(sc.spec, { ...base, sampleRss: groupSampler(rt, rssKb) }))
      })
    }
  })
}

// Measurement, not a gate: CPU time per message with publisher and subscriber on ONE worker
// against on TWO workers (the fabric in between). Opt-in because it loads the machine:
//   npm run build && RINGMQ_MEASURE=1 npx vitest run test/integration/cluster-cpu.test.ts
// Prints CPU_PER_MESSAGE lines; asserts only that every message arrived.

import fs from 'node:fs'
import path from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { Placement } from '../../src/ring/placement.js'
import { parseRingSpec } from '../../src/ring/spec.js'
import { cleanupTmp, freePorts, startRingmq, stopAll, tmpDir, type RunningProcess } from '../helpers/process.js'

const N = Number(process.env.RINGMQ_MEASURE_N ?? 20_000)

/** user + system CPU of a process in ms, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

afterAll(async () => {
  await stopAll()
  cleanupTmp()
})

describe.skipIf(!process.env.RINGMQ_MEASURE)('CPU per message across workers', () => {
  it('one worker vs two workers, QoS 1, 64-byte payloads', async (ctx) => {
    const ports = await freePorts(4)
    const spec = parseRingSpec({
      epoch: 1,
      replicas: 1,
      workers: [1, 2].map((i) => ({ id: `w${i}`, mqtt: `127.0.0.1:${ports[i - 1]}`, peer: `127.0.0.1:${ports[i + 1]}` })),
    })
    const placement = new Placement(spec)
    const ringFile = path.join(tmpDir(), 'ring.json')
    fs.writeFileSync(ringFile, JSON.stringify(spec))
    const procs: RunningProcess[] = await Promise.all(
      spec.workers.map((w) => startRingmq(['worker', '--id', w.id, '--mqtt', w.mqtt, '--peer', w.peer, '--data', tmpDir(), '--ring', ringFile])),
    )
    if (!procs.every((p) => typeof p.ready.peer === 'string')) return ctx.skip()
    const idOn = (owner: string, prefix: string): string => {
      for (let i = 0; ; i++) if (placement.prefs(`${prefix}-${i}`)[0]!.id === owner) return `${prefix}-${i}`
    }
    const url = (id: string) => `mqtt://${spec.workers.find((w) => w.id === id)!.mqtt}`
    const payload = Buffer.alloc(64, 120)

    const run = async (label: string, subOn: string, topic: string): Promise<void> => {
      const sub: MqttClient = await mqtt.connectAsync(url(subOn), { clientId: idOn(subOn, `cpu-sub-${label}`), reconnectPeriod: 0 })
      const pub: MqttClient = await mqtt.connectAsync(url('w1'), { clientId: idOn('w1', `cpu-pub-${label}`), reconnectPeriod: 0 })
      let got = 0
      let resolveAll!: () => void
      const all = new Promise<void>((r) => (resolveAll = r))
      sub.on('message', (_t, body) => {
        if (body.length === payload.length && ++got === N) resolveAll()
      })
      await sub.subscribeAsync(topic, { qos: 1 })
      // wait until the route has reached w1: a probe message arrives
      const probe = new Promise<void>((r) => sub.once('message', () => r()))
      const probeTimer = setInterval(() => pub.publish(topic, 'probe', { qos: 0 }), 50)
      await probe
      clearInterval(probeTimer)
      const before = procs.map((p) => cpuMs(p.pid))
      const t0 = performance.now()
      const window = 100
      for (let i = 0; i < N; i += window) {
        await Promise.all(Array.from({ length: Math.min(window, N - i) }, () => pub.publishAsync(topic, payload, { qos: 1 })))
      }
      await all
      const wall = performance.now() - t0
      const used = procs.map((p, i) => cpuMs(p.pid) - before[i]!)
      const total = used.reduce((a, b) => a + b, 0)
      console.log(
        `CPU_PER_MESSAGE ${label}: n=${N} total=${((total * 1000) / N).toFixed(1)}us/msg ` +
          `w1=${((used[0]! * 1000) / N).toFixed(1)}us w2=${((used[1]! * 1000) / N).toFixed(1)}us wall=${wall.toFixed(0)}ms rate=${Math.round(N / (wall / 1000))}/s`,
      )
      expect(got).toBe(N)
      await Promise.all([sub.endAsync(), pub.endAsync()])
    }
    await run('one-worker', 'w1', 'cpu/one')
    await run('two-workers', 'w2', 'cpu/two')
  }, 180_000)
})

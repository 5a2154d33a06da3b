// Real processes: 3 workers (replicas 2) on loopback with the gRPC fabric, MQTT.js 5 clients
// connected straight to workers. Covers cluster behaviour the end-to-end file does not:
// take-over across workers with a will, shared-group member counts across workers.
// Assertions on shared-group spread rely on the documented policy (docs/cluster.md, "Cross-
// worker publish"): round-robin weighted by member count, one turn counter per publishing
// worker, round-robin among a worker's own members.

import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient, type AdminClient } from '../../src/cluster/admin-client.js'
import type { Placement } from '../../src/ring/placement.js'
import type { RingSpec } from '../../src/ring/spec.js'
import { writeThreeWorkerRing } from '../helpers/cluster.js'
import { cleanupTmp, startRingmq, stopAll, tmpDir, type RunningProcess } from '../helpers/process.js'

interface W {
  id: string
  url: string
  proc: RunningProcess
  admin: AdminClient
}

let spec: RingSpec
let placement: Placement
let workers: W[] = []
const clients = new Set<MqttClient>()

const byId = (id: string): W => workers.find((w) => w.id === id)!

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function routesOf(viewer: string, owner: string): Promise<number> {
  return (await byId(viewer).admin.status()).peers.find((p) => p.id === owner)?.routes ?? 0
}

async function routesSeen(viewer: string, owner: string, n: number): Promise<void> {
  await waitFor(async () => (await routesOf(viewer, owner)) >= n, `${viewer} sees ${n} routes of ${owner}`)
}

/** A client ID whose prefs are [first, second, ...]. */
function idWithPrefs(prefix: string, first: string, second?: string): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`
    const p = placement.prefs(id)
    if (p[0]!.id === first && (second === undefined || p[1]!.id === second)) return id
  }
}

async function connect(w: string, opts: IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(byId(w).url, { reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 5, ...opts })
  clients.add(c)
  return c
}

function collect(c: MqttClient): Array<{ topic: string; payload: string }> {
  const out: Array<{ topic: string; payload: string }> = []
  c.on('message', (topic, payload) => out.push({ topic, payload: payload.toString() }))
  return out
}

/** A subscriber on w3 to `filter` (QoS 1), once w1 has its route: what it receives. */
async function subscriberOnW3(prefix: string, filter: string): Promise<Array<{ topic: string; payload: string }>> {
  const sub = await connect('w3', { clientId: idWithPrefs(prefix, 'w3') })
  const got = collect(sub)
  const before = await routesOf('w1', 'w3')
  await sub.subscribeAsync(filter, { qos: 1 })
  await routesSeen('w1', 'w3', before + 1)
  return got
}

beforeAll(async () => {
  const ring = await writeThreeWorkerRing('ringmq-gaps-')
  spec = ring.spec
  placement = ring.placement
  const ringFile = ring.ringFile
  workers = await Promise.all(
    spec.workers.map(async (w) => {
      const proc = await startRingmq(['worker', '--id', w.id, '--mqtt', w.mqtt, '--peer', w.peer, '--data', tmpDir(`ringmq-${w.id}-`), '--ring', ringFile])
      return { id: w.id, url: `mqtt://${w.mqtt}`, proc, admin: createAdminClient(w.peer) }
    }),
  )
  await waitFor(async () => {
    const st = await Promise.all(workers.map((w) => w.admin.status().catch(() => undefined)))
    return st.every((s) => s !== undefined && s.peers.length === 2 && s.peers.every((p) => p.up))
  }, 'all peer links up')
}, 60_000)

afterAll(async () => {
  await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => undefined)))
  for (const w of workers) w.admin.close()
  await stopAll()
  cleanupTmp()
})

describe('cluster gaps (3 workers)', () => {
  it('publishes the will of an expiry-0 session taken over from another worker', async () => {
    const got = await subscriberOnW3('tw-sub', 'gaps/will/#')

    const clientId = idWithPrefs('tw', 'w1', 'w2')
    const first = await connect('w1', { clientId, will: { topic: 'gaps/will/taken', payload: Buffer.from('gone'), qos: 1, retain: false } })
    let reason: number | undefined
    first.on('disconnect', (p) => (reason = p.reasonCode))
    const second = await connect('w2', { clientId })
    // the will is out before w2 answers CONNACK; the old connection is told why
    await waitFor(() => reason !== undefined, 'old connection told')
    expect(reason).toBe(0x8e)
    await waitFor(() => got.length >= 1, 'will delivered on w3')
    expect(got).toEqual([{ topic: 'gaps/will/taken', payload: 'gone' }])
    // the new connection carries no will of the old one: a normal end publishes nothing more
    await second.endAsync()
    clients.delete(second)
    const fence = await connect('w1', { clientId: idWithPrefs('tw-fence', 'w1') })
    await fence.publishAsync('gaps/will/fence', 'fence', { qos: 1 })
    await waitFor(() => got.length >= 2, 'fence')
    expect(got.map((m) => m.payload)).toEqual(['gone', 'fence'])
  })

  it('publishes the pending delayed will of a persistent session taken over from another worker', async () => {
    const got = await subscriberOnW3('tp-sub', 'gaps/pwill/#')

    const clientId = idWithPrefs('tp', 'w1', 'w2')
    const first = await connect('w1', {
      clientId, clean: false, properties: { sessionExpiryInterval: 600 },
      will: { topic: 'gaps/pwill/taken', payload: Buffer.from('later'), qos: 1, retain: false, properties: { willDelayInterval: 300 } },
    })
    // an ungraceful close: the will waits for its delay while the session lives on w1
    first.stream.destroy()
    await waitFor(async () => (await byId('w1').admin.locate(clientId)).live_here === false, 'w1 sees the client gone')
    expect(got).toHaveLength(0)
    await connect('w2', { clientId, clean: false, properties: { sessionExpiryInterval: 600 } })
    // the session ended on w1 (its state does not move): its will is due now [MQTT-3.1.3-9]
    await waitFor(() => got.length >= 1, 'delayed will published on take-over')
    expect(got).toEqual([{ topic: 'gaps/pwill/taken', payload: 'later' }])
  })

  it('spreads a shared group by member count across workers, each message exactly once', async () => {
    const a1 = await connect('w1', { clientId: idWithPrefs('sh-a1', 'w1') })
    const a2 = await connect('w1', { clientId: idWithPrefs('sh-a2', 'w1') })
    const b = await connect('w2', { clientId: idWithPrefs('sh-b', 'w2') })
    const fence = await connect('w1', { clientId: idWithPrefs('sh-fence', 'w1') })
    const got = { a1: collect(a1), a2: collect(a2), b: collect(b) }
    const r1 = await routesOf('w3', 'w1')
    const r2 = await routesOf('w3', 'w2')
    // deltas are ordered per link: once w3 holds the fence route, it holds the count before it
    await a1.subscribeAsync('$share/gaps-g/gaps/jobs/+', { qos: 1 })
    await a2.subscribeAsync('$share/gaps-g/gaps/jobs/+', { qos: 1 })
    await fence.subscribeAsync('gaps/fence/1', { qos: 1 })
    await b.subscribeAsync('$share/gaps-g/gaps/jobs/+', { qos: 1 })
    await routesSeen('w3', 'w1', r1 + 2)
    await routesSeen('w3', 'w2', r2 + 1)

    const pub = await connect('w3', { clientId: idWithPrefs('sh-pub', 'w3') })
    for (let i = 0; i < 30; i++) await pub.publishAsync(`gaps/jobs/${i}`, `job-${i}`, { qos: 1 })
    await waitFor(() => got.a1.length + got.a2.length + got.b.length >= 30, '30 jobs delivered')
    // w1 holds 2 of 3 members: 2 turns in 3 go there, alternating between its members
    expect([got.a1.length, got.a2.length, got.b.length]).toEqual([10, 10, 10])

    // one member leaves: w3 learns the new count without waiting for a reconcile
    await a2.unsubscribeAsync('$share/gaps-g/gaps/jobs/+')
    await fence.subscribeAsync('gaps/fence/2', { qos: 1 })
    await routesSeen('w3', 'w1', r1 + 3)
    for (let i = 30; i < 50; i++) await pub.publishAsync(`gaps/jobs/${i}`, `job-${i}`, { qos: 1 })
    await waitFor(() => got.a1.length + got.a2.length + got.b.length >= 50, '50 jobs delivered')
    expect([got.a1.length, got.a2.length, got.b.length]).toEqual([20, 10, 20])
    const all = [...got.a1, ...got.a2, ...got.b].map((m) => m.payload)
    expect(all).toHaveLength(50)
    expect(new Set(all).size).toBe(50)
  })
})

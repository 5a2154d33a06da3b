// Real processes: 3 workers (replicas 2) with the gRPC fabric and LMDB data kept across
// kill -9 restarts. Retained last-writer-wins must survive restarts: every write is stored
// with its HLC stamp and a clear as a tombstone (docs/cluster.md, "Retained messages").
//
// Commits: a worker applies a replicated retained write asynchronously, so before a kill -9
// the test waits for a "commit fence": a QoS 1 retained publish on that worker, acknowledged
// only after its commit, and lmdb commits writes in the order they were issued.

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
  data: string
  proc: RunningProcess
  admin: AdminClient
}

let spec: RingSpec
let placement: Placement
let ringFile = ''
const workers = new Map<string, W>()
let seq = 0

const w = (id: string): W => workers.get(id)!

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function startWorker(id: string): Promise<void> {
  const s = spec.workers.find((x) => x.id === id)!
  const old = workers.get(id)
  old?.admin.close()
  const data = old?.data ?? tmpDir(`ringmq-${id}-`)
  const proc = await startRingmq(['worker', '--id', id, '--mqtt', s.mqtt, '--peer', s.peer, '--data', data, '--ring', ringFile])
  workers.set(id, { id, url: `mqtt://${s.mqtt}`, data, proc, admin: createAdminClient(s.peer) })
}

/** Waits until each of `ids` has an up link to each other of `ids`. */
async function linksUp(ids: string[]): Promise<void> {
  await waitFor(async () => {
    for (const id of ids) {
      const st = await w(id).admin.status().catch(() => undefined)
      if (!st) return false
      for (const other of ids) if (other !== id && !st.peers.find((p) => p.id === other)?.up) return false
    }
    return true
  }, `links up among ${ids.join(',')}`)
}

function firstPref(id: string): string {
  for (let i = 0; ; i++) {
    const c = `ret-${id}-${seq++}`
    if (placement.prefs(c)[0]!.id === id) return c
  }
}

async function connect(id: string, opts: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(w(id).url, { clientId: firstPref(id), reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 5, ...opts })
}

async function publishRetained(id: string, topic: string, payload: string): Promise<void> {
  const c = await connect(id)
  await c.publishAsync(topic, payload, { qos: 1, retain: true })
  await c.endAsync()
}

/** Every replicated write issued on `id` so far is committed (see the header). */
async function commitFence(id: string): Promise<void> {
  await publishRetained(id, `gaps-ret/fence/${id}`, `fence-${seq++}`)
}

/**
 * The retained message a new subscriber on `id` gets for `topic`, or null. A fence message on
 * the same connection, published after SUBACK, arrives after any retained message.
 */
async function retainedAt(id: string, topic: string): Promise<string | null> {
  const c = await connect(id)
  const got: Array<{ topic: string; payload: string }> = []
  c.on('message', (t, p) => got.push({ topic: t, payload: p.toString() }))
  const fence = `gaps-ret/probe/${seq++}`
  await c.subscribeAsync({ [topic]: { qos: 1 }, [fence]: { qos: 1 } })
  await c.publishAsync(fence, 'fence', { qos: 1 })
  await waitFor(() => got.some((m) => m.topic === fence), 'probe fence')
  await c.endAsync()
  const hit = got.filter((m) => m.topic === topic)
  return hit.length === 0 ? null : hit[hit.length - 1]!.payload
}

beforeAll(async () => {
  const ring = await writeThreeWorkerRing('ringmq-gaps-ret-')
  spec = ring.spec
  placement = ring.placement
  ringFile = ring.ringFile
  for (const id of ['w1', 'w2', 'w3']) await startWorker(id)
  await linksUp(['w1', 'w2', 'w3'])
}, 60_000)

afterAll(async () => {
  for (const x of workers.values()) x.admin.close()
  await stopAll()
  cleanupTmp()
})

describe('retained last-writer-wins across restarts', () => {
  it('keeps stamps and tombstones through kill -9, so a stale copy never comes back', async () => {
    const X = 'gaps-ret/x'
    const Y = 'gaps-ret/y'
    await publishRetained('w1', X, 'x-1')
    await publishRetained('w3', Y, 'y-old')
    for (const id of ['w1', 'w2', 'w3']) {
      await waitFor(async () => (await retainedAt(id, X)) === 'x-1' && (await retainedAt(id, Y)) === 'y-old', `both on ${id}`)
      await commitFence(id)
    }

    // w2 restarts from its store: the message and its stamp are back
    await w('w2').proc.kill9()
    await startWorker('w2')
    await linksUp(['w1', 'w2', 'w3'])
    expect(await retainedAt('w2', X)).toBe('x-1')

    // w1 goes away; meanwhile X is cleared on w3 and Y replaced on w2
    await w('w1').proc.kill9()
    await publishRetained('w3', X, '')
    await publishRetained('w2', Y, 'y-new')
    for (const id of ['w2', 'w3']) {
      await waitFor(async () => (await retainedAt(id, X)) === null && (await retainedAt(id, Y)) === 'y-new', `clear and replace on ${id}`)
      await commitFence(id)
    }

    // both holders of the newer writes restart: only their stores remember them
    await Promise.all([w('w2').proc.kill9(), w('w3').proc.kill9()])
    await startWorker('w2')
    await startWorker('w3')
    await linksUp(['w2', 'w3'])
    expect(await retainedAt('w2', X)).toBeNull()
    expect(await retainedAt('w3', Y)).toBe('y-new')

    // w1 comes back with the older copies; last-writer-wins by stored stamps clears X and
    // replaces Y on w1 (a stamp-less restore would have won Y by writer tie-break and X by default)
    await startWorker('w1')
    await linksUp(['w1', 'w2', 'w3'])
    await waitFor(async () => {
      for (const id of ['w1', 'w2', 'w3']) {
        if ((await retainedAt(id, X)) !== null || (await retainedAt(id, Y)) !== 'y-new') return false
      }
      return true
    }, 'every worker: X cleared, Y newest')
  }, 120_000)
})

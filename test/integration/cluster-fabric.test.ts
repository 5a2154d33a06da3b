// The gRPC fabric between in-process workers: real gRPC on loopback, recording brokers.

import { afterEach, describe, expect, it } from 'vitest'
import { Placement } from '../../src/ring/placement.js'
import { HEARTBEAT_MS, MISSED_BEATS, forwarded, makeSpec, metricValue, msg, startCluster, startNode, waitFor, RecordingBroker, type Node } from './cluster-harness.js'

let nodes: Node[] = []
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.fabric.close()))
  nodes = []
})

const interest = (n: Node, topic: string) =>
  n.fabric.fabric
    .remoteInterest(topic)
    .map((i) => ({ workerId: i.workerId, normal: i.normal, groups: Object.fromEntries(i.groups) }))
    .sort((a, b) => a.workerId.localeCompare(b.workerId))

describe('cluster routes', () => {
  it('sends a snapshot at link start and ordered deltas after', async () => {
    const spec = await (await import('./cluster-harness.js')).makeSpec(2)
    const b1 = new RecordingBroker('w1')
    b1.routes.set('|a/+', { filter: 'a/+', group: null, count: 3 })
    const w1 = await startNode(spec, 'w1', b1)
    const w2 = await startNode(spec, 'w2')
    nodes = [w1, w2]
    await waitFor(() => interest(w2, 'a/x').length === 1, 'snapshot route on w2')
    expect(interest(w2, 'a/x')).toEqual([{ workerId: 'w1', normal: true, groups: {} }])
    expect(interest(w1, 'a/x')).toEqual([])

    w1.fabric.fabric.routeAdded({ filter: 'b/#', group: null })
    w1.fabric.fabric.routeAdded({ filter: 's/t', group: 'g', count: 2 } as never)
    await waitFor(() => interest(w2, 's/t').length === 1 && interest(w2, 'b/c/d').length === 1, 'delta routes on w2')
    expect(interest(w2, 's/t')).toEqual([{ workerId: 'w1', normal: false, groups: { 'g/s/t': 2 } }])
    expect(interest(w2, 'b')).toEqual([{ workerId: 'w1', normal: true, groups: {} }]) // "b/#" matches "b"

    w1.fabric.fabric.routeRemoved({ filter: 'b/#', group: null })
    await waitFor(() => interest(w2, 'b/c').length === 0, 'removed route gone on w2')
    expect(interest(w2, 's/t')).toHaveLength(1)
    // wildcards do not match $-topics [MQTT-4.7.2-1]
    w1.fabric.fabric.routeAdded({ filter: '#', group: null })
    await waitFor(() => interest(w2, 'x').length === 1, '# route on w2')
    expect(interest(w2, '$SYS/x')).toEqual([])
  })

  it('reconciles with the broker route table: member counts and missed changes', async () => {
    const { nodes: ns } = await startCluster(2)
    nodes = ns
    const [w1, w2] = ns as [Node, Node]
    w1.fabric.fabric.routeAdded({ filter: 'jobs/+', group: 'g' })
    await waitFor(() => interest(w2, 'jobs/1').length === 1, 'group route on w2')
    expect(interest(w2, 'jobs/1')[0]!.groups).toEqual({ 'g/jobs/+': 1 })
    // the broker's group grows to 3 members without telling the fabric (first/last only)
    w1.broker.routes.set('g|jobs/+', { filter: 'jobs/+', group: 'g', count: 3 })
    // and a route the fabric was never told about appears, one it was told about vanishes
    w1.broker.routes.set('|silent/#', { filter: 'silent/#', group: null, count: 1 })
    w1.fabric.fabric.routeAdded({ filter: 'gone', group: null })
    w1.broker.routes.delete('|gone')
    await waitFor(() => interest(w2, 'jobs/1')[0]?.groups['g/jobs/+'] === 3, 'count 3 on w2')
    await waitFor(() => interest(w2, 'silent/x').length === 1 && interest(w2, 'gone').length === 0, 'reconciled on w2')
  })

  it('sends large route sets and retained catch-ups in chunks', async () => {
    const spec = await makeSpec(2)
    const b1 = new RecordingBroker('w1')
    for (let i = 0; i < 40_000; i++) b1.routes.set(`|big/${i}/${'x'.repeat(20)}/+`, { filter: `big/${i}/${'x'.repeat(20)}/+`, group: null, count: 1 })
    const big = Buffer.alloc(700 * 1024, 1)
    for (let i = 0; i < 4; i++) b1.retained.set(`big/r${i}`, msg(`big/r${i}`, '', { payload: big }))
    const w1 = await startNode(spec, 'w1', b1)
    const w2 = await startNode(spec, 'w2')
    nodes = [w1, w2]
    await waitFor(() => w2.fabric.status().peers[0]!.routes === 40_000, 'all 40000 routes on w2')
    expect(interest(w2, `big/39999/${'x'.repeat(20)}/y`)).toHaveLength(1)
    await waitFor(() => w2.broker.retained.size === 4, 'all retained on w2')
    expect(w2.broker.retained.get('big/r3')!.payload.equals(big)).toBe(true)
  })

  it('converges by heartbeat after deltas were dropped (seq gap) or corrupted (digest)', async () => {
    const { nodes: ns } = await startCluster(2)
    nodes = ns
    const [w1, w2] = ns as [Node, Node]
    // dropped on the sender: w2 learns from the heartbeat's route_seq that it missed one
    w1.fabric.hooks.dropOutgoingDelta = () => true
    w1.fabric.fabric.routeAdded({ filter: 'lost/1', group: null })
    await waitFor(() => interest(w2, 'lost/1').length === 1, 'dropped delta repaired')
    expect(await metricValue(w2.registry, 'ringmq_route_resyncs_total', { reason: 'gap' })).toBeGreaterThan(0)
    w1.fabric.hooks.dropOutgoingDelta = undefined

    // corrupted on the receiver: seq advances, content missing, only the digest can tell
    let corrupt = true
    w2.fabric.hooks.corruptIncomingDelta = () => corrupt
    w1.fabric.fabric.routeAdded({ filter: 'lost/2', group: null })
    await waitFor(() => interest(w2, 'lost/2').length === 1, 'corrupted delta repaired')
    corrupt = false
    expect(await metricValue(w2.registry, 'ringmq_route_resyncs_total', { reason: 'digest' })).toBeGreaterThan(0)
    expect(interest(w2, 'lost/1')).toHaveLength(1)
  })
})

describe('cross-worker publish', () => {
  it('reports interest only for peers with a matching route and delivers forwards there', async () => {
    const { nodes: ns } = await startCluster(3)
    nodes = ns
    const [w1, w2, w3] = ns as [Node, Node, Node]
    w2.fabric.fabric.routeAdded({ filter: 'x/#', group: null })
    w3.fabric.fabric.routeAdded({ filter: 'y/#', group: null })
    await waitFor(() => interest(w1, 'x/1').length === 1 && interest(w1, 'y/1').length === 1, 'routes on w1')
    const targets = interest(w1, 'x/1')
    expect(targets.map((t) => t.workerId)).toEqual(['w2'])
    for (let i = 0; i < 100; i++) forwarded(w1.fabric.fabric, 'w2', msg('x/1', `m${i}`), [], true)
    await waitFor(() => w2.broker.delivered.length === 100, '100 forwards on w2')
    // per-publisher order kept over the link
    expect(w2.broker.delivered.map((d) => d.msg.payload.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`))
    expect(w2.broker.delivered[0]).toMatchObject({ normal: true, groups: [], msg: { topic: 'x/1', origin: 'w1', publisherId: 'pub' } })
    expect(w3.broker.delivered).toHaveLength(0)
    expect(await metricValue(w1.registry, 'ringmq_forward_messages_total', { peer: 'w2' })).toBe(100)
    expect(await metricValue(w1.registry, 'ringmq_forward_batches_total', { peer: 'w2' })).toBeLessThan(100)
  })

  it('carries MQTT 5 properties, expiry and shared groups unchanged', async () => {
    const { nodes: ns } = await startCluster(2)
    nodes = ns
    const [w1, w2] = ns as [Node, Node]
    const m = msg('p/q', 'body', {
      qos: 1,
      retain: true,
      expiresAt: Date.now() + 60_000,
      properties: {
        payloadFormatIndicator: true,
        contentType: '',
        responseTopic: 'resp/1',
        correlationData: Buffer.from([1, 2, 3]),
        userProperties: { a: '1', b: ['x', 'y'] },
      },
    })
    await forwarded(w1.fabric.fabric, 'w2', m, ['g/p/q'], false)
    expect(w2.broker.delivered).toHaveLength(1)
    expect(w2.broker.delivered[0]).toEqual({ msg: m, groups: ['g/p/q'], normal: false })
  })

  it('resolves a QoS 1 forward only after the peer broker resolved, and rejects on failure', async () => {
    const { nodes: ns } = await startCluster(2)
    nodes = ns
    const [w1, w2] = ns as [Node, Node]
    let open!: () => void
    w2.broker.gate = new Promise<void>((r) => (open = r))
    let settled = false
    const p = forwarded(w1.fabric.fabric, 'w2', msg('q/1', 'a', { qos: 1 }), [], true)!
    p.then(() => (settled = true))
    await waitFor(() => w2.broker.delivered.length === 1, 'delivered on w2')
    // the peer holds the message but has not confirmed: the forward must still be pending
    await new Promise((r) => setImmediate(r))
    expect(settled).toBe(false)
    open()
    await p
    expect(settled).toBe(true)

    w2.broker.gate = Promise.reject(new Error('store full'))
    w2.broker.gate.catch(() => {})
    await expect(forwarded(w1.fabric.fabric, 'w2', msg('q/1', 'b', { qos: 2 }), [], true)).rejects.toThrow(/could not take/)
    expect(await metricValue(w1.registry, 'ringmq_forward_drops_total', { reason: 'rejected_by_peer' })).toBe(1)
  })

  it('drops QoS 0 and rejects QoS 1 to a down peer, and bounds the per-peer buffer', async () => {
    const spec = await (await import('./cluster-harness.js')).makeSpec(2)
    const w1 = await startNode(spec, 'w1', undefined, { maxQueued: 5 })
    nodes = [w1]
    expect(forwarded(w1.fabric.fabric, 'w2', msg('t', 'a'), [], true)).toBeUndefined()
    await expect(forwarded(w1.fabric.fabric, 'w2', msg('t', 'a', { qos: 1 }), [], true)).rejects.toMatchObject({ code: 'ERR_PEER_DOWN' })
    expect(await metricValue(w1.registry, 'ringmq_forward_drops_total', { reason: 'peer_down' })).toBe(2)
    const w2 = await startNode(spec, 'w2')
    nodes.push(w2)
    await waitFor(() => w1.fabric.isAlive('w2'), 'w2 up')
    // 8 forwards in one turn into a 5-message buffer: 3 overflow
    const results = Array.from({ length: 8 }, (_, i) => forwarded(w1.fabric.fabric, 'w2', msg('t', `${i}`, { qos: 1 }), [], true)!)
    const settled = await Promise.allSettled(results)
    expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(3)
    expect(await metricValue(w1.registry, 'ringmq_forward_drops_total', { reason: 'buffer_full' })).toBe(3)
  })

  it('pushes back end to end when the receiving broker is slow, without declaring the peer down', async () => {
    const spec = await makeSpec(2)
    const w1 = await startNode(spec, 'w1', undefined, { maxQueued: 200 })
    const w2 = await startNode(spec, 'w2', undefined, { maxReceiving: 50 })
    nodes = [w1, w2]
    await waitFor(() => w1.fabric.isAlive('w2') && w2.fabric.isAlive('w1'), 'link up')
    let open!: () => void
    w2.broker.gate = new Promise<void>((r) => (open = r))
    const payload = 'x'.repeat(16 * 1024)
    const accepted: Promise<void>[] = []
    let full = false
    for (let i = 0; i < 5000 && !full; i++) {
      const p = forwarded(w1.fabric.fabric, 'w2', msg('slow', payload, { qos: 1 }), [], true)!
      p.catch((err: { code?: string }) => {
        if (err.code === 'ERR_FORWARD_BUFFER_FULL') full = true
      })
      accepted.push(p)
      if (i % 50 === 49) await new Promise((r) => setImmediate(r))
    }
    await waitFor(() => full, 'sender buffer full')
    expect(w2.broker.delivered.length).toBeLessThan(accepted.length)
    // the paused link stays up through more than missedBeats silent heartbeat intervals
    await waitFor(() => (w2.fabric.status().peers[0]!.lastSeenMs ?? 0) > HEARTBEAT_MS * MISSED_BEATS * 1.5, 'silence while paused')
    expect(w2.fabric.isAlive('w1')).toBe(true)
    open()
    const results = await Promise.allSettled(accepted)
    const ok = results.filter((r) => r.status === 'fulfilled').length
    expect(ok).toBeGreaterThan(0)
    expect(ok + (await metricValue(w1.registry, 'ringmq_forward_drops_total', { reason: 'buffer_full' }))).toBe(accepted.length)
    expect(await metricValue(w1.registry, 'ringmq_forward_drops_total', { reason: 'link_lost' })).toBe(0)
    await waitFor(() => w2.broker.delivered.length === ok, 'every accepted forward delivered')
  })

  it('exposes shared group member counts per worker for cluster-wide single delivery', async () => {
    const { nodes: ns } = await startCluster(3)
    nodes = ns
    const [w1, w2, w3] = ns as [Node, Node, Node]
    w2.fabric.fabric.routeAdded({ filter: 'jobs/+', group: 'g', count: 2 } as never)
    w3.fabric.fabric.routeAdded({ filter: 'jobs/+', group: 'g', count: 1 } as never)
    w3.fabric.fabric.routeAdded({ filter: 'jobs/#', group: null })
    await waitFor(() => interest(w1, 'jobs/1').length === 2 && interest(w1, 'jobs/1')[1]!.normal, 'group routes on w1')
    expect(interest(w1, 'jobs/1')).toEqual([
      { workerId: 'w2', normal: false, groups: { 'g/jobs/+': 2 } },
      { workerId: 'w3', normal: true, groups: { 'g/jobs/+': 1 } },
    ])
  })
})

describe('retained replication', () => {
  it('converges every worker to the last writer, clears with tombstones', async () => {
    const { nodes: ns } = await startCluster(3)
    nodes = ns
    const [w1, w2, w3] = ns as [Node, Node, Node]
    w1.fabric.fabric.retainedChanged('r/1', msg('r/1', 'first', { retain: true }))
    await waitFor(() => ns.every((n) => n === w1 || n.broker.retained.get('r/1')?.payload.toString() === 'first'), 'first everywhere')
    w2.fabric.fabric.retainedChanged('r/1', msg('r/1', 'second', { retain: true, origin: 'w2' }))
    await waitFor(() => [w1, w3].every((n) => n.broker.retained.get('r/1')?.payload.toString() === 'second'), 'second everywhere')
    // concurrent writes from two workers: all end with the same winner
    w1.fabric.fabric.retainedChanged('r/2', msg('r/2', 'from-w1'))
    w3.fabric.fabric.retainedChanged('r/2', msg('r/2', 'from-w3'))
    w1.broker.retained.set('r/2', msg('r/2', 'from-w1'))
    w3.broker.retained.set('r/2', msg('r/2', 'from-w3'))
    await waitFor(() => {
      const vals = ns.map((n) => n.broker.retained.get('r/2')?.payload.toString())
      return vals.every((v) => v !== undefined && v === vals[0])
    }, 'one winner for r/2')
    w3.fabric.fabric.retainedChanged('r/1', null)
    w3.broker.retained.delete('r/1')
    await waitFor(() => ns.every((n) => !n.broker.retained.has('r/1')), 'cleared everywhere')
    const digests = ns.map((n) => n.fabric.status().retained)
    expect(digests).toEqual([2, 2, 2]) // r/1 tombstone + r/2 on each
  })
})

describe('peer loss and return', () => {
  it('stops matching a closed peer, then resyncs routes and retained when it restarts', async () => {
    const { spec, nodes: ns } = await startCluster(3)
    nodes = ns
    const [w1, w2, w3] = ns as [Node, Node, Node]
    w3.fabric.fabric.routeAdded({ filter: 'z/#', group: null })
    await waitFor(() => interest(w1, 'z/1').length === 1, 'w3 route on w1')
    await w3.fabric.close()
    await waitFor(() => !w1.fabric.isAlive('w3') && !w2.fabric.isAlive('w3'), 'w3 down on w1 and w2')
    expect(interest(w1, 'z/1')).toEqual([])
    expect(w1.fabric.status().peers.find((p) => p.id === 'w3')).toMatchObject({ up: false, routes: 1 })

    // retained changes while w3 is away; publishes to live workers keep flowing
    w1.fabric.fabric.retainedChanged('r/away', msg('r/away', 'while-down'))
    w2.fabric.fabric.routeAdded({ filter: 'z/#', group: null })
    await waitFor(() => interest(w1, 'z/1').length === 1, 'w2 route on w1')
    await forwarded(w1.fabric.fabric, 'w2', msg('z/1', 'live', { qos: 1 }), [], true)
    expect(w2.broker.delivered.map((d) => d.msg.payload.toString())).toContain('live')

    // restart w3 with its "persisted" broker state (same recording broker)
    const w3b = await startNode(spec, 'w3', w3.broker)
    nodes[2] = w3b
    await waitFor(() => w1.fabric.isAlive('w3') && w3b.fabric.isAlive('w1') && w3b.fabric.isAlive('w2'), 'w3 back')
    await waitFor(() => interest(w1, 'z/1').length === 2, 'w3 routes back on w1')
    await waitFor(() => w3b.broker.retained.get('r/away')?.payload.toString() === 'while-down', 'w3 caught up on retained')
  })
})

describe('partition', () => {
  it('keeps both sides serving and converges routes and retained after it heals', async () => {
    const { spec, nodes: ns } = await startCluster(3)
    nodes = ns
    const [w1, w2, w3] = ns as [Node, Node, Node]
    const left = new Set(['w1', 'w2'])
    let cut = true
    for (const n of ns) n.fabric.hooks.partitioned = (peer) => cut && left.has(n.id) !== left.has(peer)
    await waitFor(() => !w1.fabric.isAlive('w3') && !w2.fabric.isAlive('w3') && !w3.fabric.isAlive('w1') && !w3.fabric.isAlive('w2'), 'partitioned')
    expect(w1.fabric.isAlive('w2')).toBe(true)

    // each side changes routes and retained on its own
    w1.fabric.fabric.routeAdded({ filter: 'left/#', group: null })
    w3.fabric.fabric.routeAdded({ filter: 'right/#', group: null })
    w1.fabric.fabric.retainedChanged('r/both', msg('r/both', 'left'))
    w1.broker.retained.set('r/both', msg('r/both', 'left'))
    await waitFor(() => w2.broker.retained.get('r/both')?.payload.toString() === 'left', 'left side has its write')
    w3.fabric.fabric.retainedChanged('r/both', msg('r/both', 'right-later'))
    w3.broker.retained.set('r/both', msg('r/both', 'right-later'))
    w3.fabric.fabric.retainedChanged('r/right', msg('r/right', 'right'))
    w3.broker.retained.set('r/right', msg('r/right', 'right'))
    // a take-over during the partition does not wait for the other side
    const id = (() => {
      const p = new Placement(spec)
      for (let i = 0; ; i++) if (p.prefs(`p-${i}`).some((w) => w.id === 'w3') && p.prefs(`p-${i}`).some((w) => w.id === 'w1')) return `p-${i}`
    })()
    await w1.fabric.fabric.claimSession(id)
    expect(w3.broker.ended).toEqual([])

    cut = false
    await waitFor(() => ns.every((a) => ns.every((b) => a === b || a.fabric.isAlive(b.id))), 'healed')
    await waitFor(() => interest(w1, 'right/x').length === 1 && interest(w3, 'left/x').length === 1 && interest(w2, 'right/x').length === 1, 'routes converged')
    await waitFor(
      () => ns.every((n) => n.broker.retained.get('r/both')?.payload.toString() === 'right-later' && n.broker.retained.get('r/right')?.payload.toString() === 'right'),
      'retained converged to the last writer',
    )
  })
})

describe('session claims', () => {
  it('ends the session on the other prefs workers only, with reason 0x8E', async () => {
    const { spec, nodes: ns } = await startCluster(3)
    nodes = ns
    const placement = new Placement(spec)
    const clientId = 'device-42'
    const prefs = placement.prefs(clientId).map((w) => w.id)
    expect(prefs).toHaveLength(2)
    const claimer = ns.find((n) => n.id === prefs[1])!
    const other = ns.find((n) => n.id === prefs[0])!
    const outsider = ns.find((n) => !prefs.includes(n.id))!
    await claimer.fabric.fabric.claimSession(clientId)
    expect(other.broker.ended).toEqual([{ clientId, reasonCode: 0x8e }])
    expect(outsider.broker.ended).toEqual([])
    expect(claimer.broker.ended).toEqual([])
  })

  it('does not wait for a pref worker that is down', async () => {
    const { spec, nodes: ns } = await startCluster(2)
    nodes = ns
    const [w1, w2] = ns as [Node, Node]
    await w2.fabric.close()
    await waitFor(() => !w1.fabric.isAlive('w2'), 'w2 down')
    await w1.fabric.fabric.claimSession('anyone') // resolves: nobody to ask
    expect(new Placement(spec).prefs('anyone')).toHaveLength(2)
  })
})

describe('ring epochs', () => {
  it('a new worker only it knows about dials in and spreads its epoch', async () => {
    const spec = await makeSpec(2)
    const old = { ...spec, replicas: 1, workers: spec.workers.filter((w) => w.id === 'w1') }
    const w1 = await startNode(old, 'w1')
    const w2 = await startNode({ ...spec, epoch: 2 }, 'w2')
    nodes = [w1, w2]
    await waitFor(() => w1.fabric.ring().epoch === 2, 'w1 adopted epoch 2 from w2')
    expect(w1.rings.map((r) => r.workers.map((w) => w.id))).toEqual([['w1', 'w2']])
    // w1 now knows w2; both ends agree on the one link they use
    await waitFor(() => w1.fabric.isAlive('w2') && w2.fabric.isAlive('w1'), 'link up both ways')
    expect(w1.fabric.status().peers[0]!.dialer).toBe(w2.fabric.status().peers[0]!.dialer)
    w1.fabric.fabric.routeAdded({ filter: 'after/dedupe', group: null })
    await waitFor(() => interest(w2, 'after/dedupe').length === 1, 'route over the kept link')
  })

  it('spreads a compare-and-set ring change to every peer', async () => {
    const { spec, nodes: ns } = await startCluster(3)
    nodes = ns
    const [w1] = ns as [Node]
    const next = { ...spec, epoch: 2, workers: spec.workers.map((w) => (w.id === 'w3' ? { ...w, weight: 2 } : w)) }
    expect(w1.fabric.applyRing(next, 0)).toMatchObject({ ok: false, epoch: 1 })
    expect(w1.fabric.applyRing({ ...next, epoch: 1 }, 1)).toMatchObject({ ok: false })
    expect(w1.fabric.applyRing(next, 1)).toEqual({ ok: true, epoch: 2 })
    await waitFor(() => ns.every((n) => n.fabric.ring().epoch === 2), 'epoch 2 everywhere')
    for (const n of ns) expect(n.rings.map((r) => r.epoch)).toEqual([2])
    expect(ns[2]!.fabric.ring().workers.find((w) => w.id === 'w3')!.weight).toBe(2)
    expect(await metricValue(ns[1]!.registry, 'ringmq_ring_epoch')).toBe(2)
    // the skew gauge is there for each peer that sent a heartbeat
    const skewPeers = async () => (await ns[1]!.registry.getSingleMetric('ringmq_peer_clock_skew_seconds')!.get()).values.map((v) => v.labels.peer).sort()
    const deadline = Date.now() + 10_000
    while ((await skewPeers()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(await skewPeers()).toEqual(['w1', 'w3'])
    const up = (await ns[1]!.registry.getSingleMetric('ringmq_peer_link_up')!.get()).values
    expect(up.map((v) => [v.labels.peer, v.value]).sort()).toEqual([['w1', 1], ['w3', 1]])
  })
})

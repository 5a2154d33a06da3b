// The router against real `ringmq worker` processes on loopback.
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt-packet'
import { cleanupTmp, freePorts, startRingmq, stopAll, tmpDir, type RunningProcess } from '../helpers/process.js'
import { Placement } from '../../src/ring/placement.js'
import { formatRingSpec, parseRingSpec, type RingSpec } from '../../src/ring/spec.js'
import { connectPacket, expectClosedByServer, metric, rawConnect, rawSocket, scrape } from './router-client.js'

const N = 3
let dir: string
let spec: RingSpec
let placement: Placement
let ringFile: string
const workers = new Map<string, RunningProcess>()
let router: RunningProcess
let routerPort: number

function port(hp: string | undefined): number {
  return Number(hp!.slice(hp!.lastIndexOf(':') + 1))
}

async function connectCounts(): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  await Promise.all(
    [...workers].map(async ([id, w]) => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) return out.set(id, -1)
      out.set(id, metric(await scrape(w.ready.metrics!), 'ringmq_packets_received_total', 'type="connect"'))
    }),
  )
  return out
}

/** Client IDs whose first pref is `workerId`. */
function idsOwnedBy(workerId: string, count: number, prefix: string): string[] {
  const out: string[] = []
  for (let i = 0; out.length < count; i++) if (placement.prefs(`${prefix}-${i}`)[0]!.id === workerId) out.push(`${prefix}-${i}`)
  return out
}

beforeAll(async () => {
  dir = tmpDir('ringmq-router-')
  const ports = await freePorts(2 * N)
  spec = parseRingSpec({
    epoch: 1,
    replicas: 2,
    workers: Array.from({ length: N }, (_, i) => ({ id: `w${i + 1}`, mqtt: `127.0.0.1:${ports[2 * i]}`, peer: `127.0.0.1:${ports[2 * i + 1]}` })),
  })
  placement = new Placement(spec)
  ringFile = path.join(dir, 'ring.json')
  fs.writeFileSync(ringFile, formatRingSpec(spec))
  await Promise.all(
    spec.workers.map(async (w) => {
      const p = await startRingmq(['worker', '--id', w.id, '--mqtt', w.mqtt, '--peer', w.peer, '--data', path.join(dir, w.id), '--metrics', '127.0.0.1:0', '--ring', ringFile])
      workers.set(w.id, p)
    }),
  )
  router = await startRingmq([
    'router', '--mqtt', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--ring', ringFile,
    '--connect-deadline-ms', '1500', '--max-connect-bytes', '4096', '--probe-interval-ms', '500',
    // generous: a loaded worker with Node's default listen backlog (511) may drop SYNs of a
    // 2,000-connect burst, and the kernel resends them only after a second
    '--connect-timeout-ms', '5000',
  ])
  routerPort = port(router.ready.mqtt)
}, 60_000)

afterAll(async () => {
  await stopAll()
  cleanupTmp()
})

describe('router', () => {
  it('routes the same client ID to the same worker: 1,000 reconnects over 200 IDs', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `same-${i}`)
    for (let batch = 0; batch < ids.length; batch += 20) {
      const group = ids.slice(batch, batch + 20)
      for (const id of group) {
        const before = await connectCounts()
        for (let k = 0; k < 5; k++) {
          const c = await rawConnect(routerPort, id, (k % 2 === 0 ? 4 : 5) as 4 | 5)
          expect(c.connack.returnCode ?? c.connack.reasonCode).toBe(0)
          await c.close()
        }
        const after = await connectCounts()
        const grew = [...after].filter(([w, n]) => n !== before.get(w)).map(([w, n]) => [w, n - before.get(w)!])
        // all five connects of this ID reached one worker, its owner under the ring
        expect(grew).toEqual([[placement.prefs(id)[0]!.id, 5]])
      }
    }
  }, 180_000)

  it('closes garbage, oversized and slow first packets without affecting other clients', async () => {
    const good = await rawConnect(routerPort, 'bystander-1', 5)
    good.socket.write(mqtt.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'bystander/t', qos: 0 }], properties: {} } as mqtt.ISubscribePacket, { protocolVersion: 5 }))
    await good.next('suback')

    const garbage = await rawSocket(routerPort)
    garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    const big = await rawSocket(routerPort)
    big.write(connectPacket('big', 4, { username: 'u', password: Buffer.alloc(8000) }).subarray(0, 10))
    const slow = await rawSocket(routerPort)
    slow.write(connectPacket('slow', 4).subarray(0, 3)) // and nothing more: the 1.5 s deadline closes it
    await Promise.all([expectClosedByServer(garbage), expectClosedByServer(big), expectClosedByServer(slow)])

    // the bystander still works end to end, and new clients still get in
    const newcomer = await rawConnect(routerPort, 'bystander-2', 5)
    expect(newcomer.connack.reasonCode).toBe(0)
    good.socket.write(mqtt.generate({ cmd: 'publish', topic: 'bystander/t', payload: Buffer.from('still here'), qos: 0, dup: false, retain: false } as mqtt.IPublishPacket, { protocolVersion: 5 }))
    const msg = (await good.next('publish')) as mqtt.IPublishPacket
    expect(msg.payload.toString()).toBe('still here')
    await Promise.all([good.close(), newcomer.close()])

    const m = await scrape(router.ready.metrics!)
    expect(metric(m, 'ringmq_router_connections_closed_total', 'reason="not-connect"')).toBeGreaterThanOrEqual(1)
    expect(metric(m, 'ringmq_router_connections_closed_total', 'reason="too-large"')).toBeGreaterThanOrEqual(1)
    expect(metric(m, 'ringmq_router_connections_closed_total', 'reason="deadline"')).toBeGreaterThanOrEqual(1)
  }, 60_000)

  it('splices with backpressure: a subscriber that stops reading does not make the router buffer its messages', async () => {
    const owner = placement.prefs('bp-sub')[0]!.id
    const pubId = Array.from({ length: 1000 }, (_, i) => `bp-pub-${i}`).find((id) => placement.prefs(id)[0]!.id === owner)!
    const sub = await rawConnect(routerPort, 'bp-sub', 4)
    sub.socket.write(mqtt.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'bp/t', qos: 0 }] } as mqtt.ISubscribePacket))
    await sub.next('suback')
    sub.socket.pause()
    const pub = await rawConnect(routerPort, pubId, 4)
    const frame = mqtt.generate({ cmd: 'publish', topic: 'bp/t', payload: Buffer.alloc(64 * 1024, 1), qos: 0, dup: false, retain: false } as mqtt.IPublishPacket)
    const metricsAt = workers.get(owner)!.ready.metrics!
    const droppedBefore = metric(await scrape(metricsAt), 'ringmq_publishes_dropped_total', 'reason="slow_subscriber"')
    // 128 MiB towards a subscriber that reads nothing; a QoS 0 PINGREQ round trip after each
    // MiB paces the publisher to what the worker has taken in
    for (let i = 0; i < 2048; i++) {
      if (!pub.socket.write(frame)) await new Promise((r) => pub.socket.once('drain', r))
      if (i % 16 === 15) {
        pub.socket.write(mqtt.generate({ cmd: 'pingreq' } as mqtt.IPingreqPacket))
        await pub.next('pingresp')
      }
    }
    // The worker saw its subscriber congested (it drops QoS 0 rather than buffer without end):
    // only possible if the router stopped reading from the worker while the subscriber did not
    // read. A router that buffered what it could not write would absorb all 128 MiB instead
    // (checked by breaking the pause in edge.ts: this assertion then fails).
    expect(metric(await scrape(metricsAt), 'ringmq_publishes_dropped_total', 'reason="slow_subscriber"')).toBeGreaterThan(droppedBefore)
    sub.socket.destroy()
    await pub.close()
  }, 120_000)

  it('2,000 concurrent connects through the router all succeed, and nothing leaks after they close', async () => {
    const fdsBefore = fs.readdirSync(`/proc/${router.pid}/fd`).length
    const closedBefore = await scrape(router.ready.metrics!)
    const conns = await Promise.all(Array.from({ length: 2000 }, (_, i) => rawConnect(routerPort, `many-${i}`, 4, {}, 60_000)))
    expect(conns.filter((c) => c.connack.returnCode === 0).length).toBe(2000)
    const m = await scrape(router.ready.metrics!)
    expect(metric(m, 'ringmq_router_connections')).toBeGreaterThanOrEqual(2000)
    // two sockets per proxied connection
    expect(fs.readdirSync(`/proc/${router.pid}/fd`).length).toBeGreaterThanOrEqual(4000)
    await Promise.all(conns.map((c) => c.close()))
    // every client and worker socket is released (poll: closes complete asynchronously)
    let open = -1
    let fds = -1
    for (let i = 0; i < 200; i++) {
      open = metric(await scrape(router.ready.metrics!), 'ringmq_router_connections')
      fds = fs.readdirSync(`/proc/${router.pid}/fd`).length
      if (open === 0 && fds <= fdsBefore + 2) break
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(open).toBe(0)
    expect(fds).toBeLessThanOrEqual(fdsBefore + 2)
    // each DISCONNECT + FIN is counted once, as an orderly close (whichever side's FIN the router
    // saw first), not as an error
    const closedAfter = await scrape(router.ready.metrics!)
    const orderly = (m: Map<string, number>): number =>
      metric(m, 'ringmq_router_connections_closed_total', 'reason="client-closed"') + metric(m, 'ringmq_router_connections_closed_total', 'reason="worker-closed"')
    expect(orderly(closedAfter) - orderly(closedBefore)).toBe(2000)
    expect(metric(closedAfter, 'ringmq_router_connections_closed_total', 'reason="client-error"')).toBe(metric(closedBefore, 'ringmq_router_connections_closed_total', 'reason="client-error"'))
  }, 120_000)

  it('adopts a newer ring over Admin (compare-and-set) and writes it back to --ring', async () => {
    const { createAdminClient } = await import('../../src/cluster/admin-client.js')
    const file = path.join(dir, 'admin-ring.json')
    fs.writeFileSync(file, formatRingSpec(spec))
    const r = await startRingmq(['router', '--mqtt', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--ring', file])
    const admin = createAdminClient(r.ready.admin!)
    try {
      expect((await admin.getRing()).epoch).toBe(1)
      const next = parseRingSpec({ ...spec, epoch: 2, workers: spec.workers.map((w) => (w.id === 'w3' ? { ...w, state: 'draining' } : w)) })
      expect((await admin.applyRing(next, 5)).ok).toBe(false) // wrong expected epoch
      expect((await admin.applyRing(next, 1)).ok).toBe(true)
      expect((await admin.getRing()).epoch).toBe(2)
      expect(JSON.parse(fs.readFileSync(file, 'utf8')).epoch).toBe(2)
      const id = Array.from({ length: 1000 }, (_, i) => `loc-${i}`).find((x) => placement.isPref(x, 'w3'))!
      const loc = await admin.locate(id)
      expect(loc.prefs).not.toContain('w3')
    } finally {
      admin.close()
      await r.stop()
    }
  })

  it('an empty client ID gets an assigned ID that lands on the same worker again (5.0)', async () => {
    const first = await rawConnect(routerPort, '', 5)
    expect(first.connack.reasonCode).toBe(0)
    const assigned = first.connack.properties?.assignedClientIdentifier
    expect(typeof assigned).toBe('string')
    await first.close()
    const owner = placement.prefs(assigned!)[0]!.id
    const before = await connectCounts()
    const again = await rawConnect(routerPort, assigned!, 5)
    expect(again.connack.reasonCode).toBe(0)
    await again.close()
    const after = await connectCounts()
    expect(after.get(owner)! - before.get(owner)!).toBe(1)
  })

  it('a worker refuses a direct client outside its prefs: 5.0 0x9C, 3.1.1 0x03', async () => {
    const w1 = spec.workers[0]!
    const id = Array.from({ length: 1000 }, (_, i) => `direct-${i}`).find((x) => !placement.isPref(x, 'w1'))!
    const v5 = await rawConnect(port(w1.mqtt), id, 5)
    expect(v5.connack.reasonCode).toBe(0x9c)
    const v4 = await rawConnect(port(w1.mqtt), id, 4)
    expect(v4.connack.returnCode).toBe(0x03)
    await Promise.all([expectClosedByServer(v5.socket), expectClosedByServer(v4.socket)])
  })

  it('a router with a stale ring cannot place a client on a worker outside its prefs: the worker\'s 0x9C reaches the client', async () => {
    // this router believes w1 alone owns everything
    const staleRing = path.join(dir, 'stale-ring.json')
    fs.writeFileSync(staleRing, formatRingSpec(parseRingSpec({ epoch: 1, replicas: 1, workers: [spec.workers[0]] })))
    const stale = await startRingmq(['router', '--mqtt', '127.0.0.1:0', '--ring', staleRing])
    const id = Array.from({ length: 1000 }, (_, i) => `stale-${i}`).find((x) => !placement.isPref(x, 'w1'))!
    const v5 = await rawConnect(port(stale.ready.mqtt), id, 5)
    expect(v5.connack.reasonCode).toBe(0x9c)
    await expectClosedByServer(v5.socket)
    await stale.stop()
  })

  it('closes connections above --max-connections and counts them', async () => {
    const limited = await startRingmq(['router', '--mqtt', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--ring', ringFile, '--max-connections', '2'])
    const p = port(limited.ready.mqtt)
    const a = await rawConnect(p, 'limit-a', 4)
    const b = await rawConnect(p, 'limit-b', 4)
    await expect(rawConnect(p, 'limit-c', 4)).rejects.toThrow(/closed before CONNACK/)
    expect(metric(await scrape(limited.ready.metrics!), 'ringmq_router_connections_closed_total', 'reason="limit"')).toBe(1)
    await a.close()
    // room again once the router has seen the close
    for (let i = 0; i < 200 && metric(await scrape(limited.ready.metrics!), 'ringmq_router_connections') !== 1; i++) await new Promise((r) => setTimeout(r, 25))
    const c = await rawConnect(p, 'limit-c', 4)
    expect(c.connack.returnCode).toBe(0)
    await Promise.all([b.close(), c.close()])
    await limited.stop()
  })

  it('answers CONNACK server unavailable in the client version when no worker is reachable', async () => {
    const ports = await freePorts(2)
    const deadRing = path.join(dir, 'dead-ring.json')
    fs.writeFileSync(deadRing, formatRingSpec(parseRingSpec({ epoch: 1, replicas: 1, workers: [{ id: 'gone', mqtt: `127.0.0.1:${ports[0]}`, peer: `127.0.0.1:${ports[1]}` }] })))
    const lonely = await startRingmq(['router', '--mqtt', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--ring', deadRing])
    const p = port(lonely.ready.mqtt)
    const v4 = await rawConnect(p, 'nobody-4', 4)
    expect(v4.connack.returnCode).toBe(0x03)
    const v5 = await rawConnect(p, 'nobody-5', 5)
    expect(v5.connack.reasonCode).toBe(0x88)
    await Promise.all([expectClosedByServer(v4.socket), expectClosedByServer(v5.socket)])
    const m = await scrape(lonely.ready.metrics!)
    expect(metric(m, 'ringmq_router_route_failures_total', 'reason="no-worker"')).toBe(2)
    await lonely.stop()
  })

  it('--join: a router learns the ring from another node\'s Admin service and follows newer epochs', async () => {
    const { createAdminClient } = await import('../../src/cluster/admin-client.js')
    const file = path.join(dir, 'join-ring.json')
    fs.writeFileSync(file, formatRingSpec(spec))
    const a = await startRingmq(['router', '--mqtt', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--ring', file])
    const b = await startRingmq(['router', '--mqtt', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--join', a.ready.admin!, '--join-poll-ms', '200'])
    expect(b.ready.epoch).toBe(1)
    // b routes by the ring it learned
    const c = await rawConnect(port(b.ready.mqtt), 'joined-client', 4)
    expect(c.connack.returnCode).toBe(0)
    await c.close()
    const admin = createAdminClient(a.ready.admin!)
    try {
      expect((await admin.applyRing(parseRingSpec({ ...spec, epoch: 7 }), 1)).ok).toBe(true)
      let epoch = 0
      for (let i = 0; i < 200 && epoch !== 7; i++) {
        epoch = metric(await scrape(b.ready.metrics!), 'ringmq_router_ring_epoch')
        if (epoch !== 7) await new Promise((r) => setTimeout(r, 50))
      }
      expect(epoch).toBe(7)
    } finally {
      admin.close()
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('with --proxy-protocol the worker sees the device address, not the router', async () => {
    const ports = await freePorts(2)
    const ppRing = path.join(dir, 'pp-ring.json')
    fs.writeFileSync(ppRing, formatRingSpec(parseRingSpec({ epoch: 1, replicas: 1, workers: [{ id: 'pp', mqtt: `127.0.0.1:${ports[0]}`, peer: `127.0.0.1:${ports[1]}` }] })))
    const worker = await startRingmq(['worker', '--id', 'pp', '--mqtt', `127.0.0.1:${ports[0]}`, '--data', path.join(dir, 'pp'), '--ring', ppRing, '--proxy-protocol'])
    const pr = await startRingmq(['router', '--mqtt', '127.0.0.1:0', '--ring', ppRing, '--proxy-protocol'])
    const c = await rawConnect(port(pr.ready.mqtt), 'behind-proxy', 4)
    expect(c.connack.returnCode).toBe(0)
    const devicePort = c.socket.localPort
    // a protocol violation makes the worker log the connection's remote address
    c.socket.write(Buffer.from([0x82, 0x00]))
    await expectClosedByServer(c.socket)
    const line = await worker.waitForLog((l) => l.msg === 'protocol error' && l.clientId === 'behind-proxy')
    expect(line.remote).toBe(`127.0.0.1:${devicePort}`)
    await Promise.all([pr.stop(), worker.stop()])
  })

  it('a worker killed with kill -9: its clients land on the next replica, and it is seen down', async () => {
    const ids = idsOwnedBy('w1', 20, 'victim')
    await workers.get('w1')!.kill9()
    const before = await connectCounts()
    for (const id of ids) {
      const c = await rawConnect(routerPort, id, 5)
      expect(c.connack.reasonCode).toBe(0)
      await c.close()
    }
    const after = await connectCounts()
    const expected = new Map<string, number>()
    for (const id of ids) {
      const next = placement.prefs(id)[1]!.id
      expected.set(next, (expected.get(next) ?? 0) + 1)
    }
    for (const [w, n] of expected) expect(after.get(w)! - before.get(w)!, `connects at ${w}`).toBe(n)
    const m = await scrape(router.ready.metrics!)
    expect(metric(m, 'ringmq_router_worker_up', 'worker="w1"')).toBe(0)
    expect(metric(m, 'ringmq_router_worker_up', 'worker="w2"')).toBe(1)
  }, 60_000)
})

// Session logic through an in-process broker (createBroker) on a real LMDB store and loopback
// sockets: inflight window from the client's Receive Maximum, packet-ID allocation, queue
// bounds with each overflow policy, QoS 2 outgoing handshake, persistence of subscriptions.

import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { openLmdbStore } from '../../src/store/lmdb-store.js'
import { createBroker, type Broker } from '../../worker/broker.js'
import type { BrokerLimits } from '../../src/mqtt/limits.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function broker(limits: Partial<BrokerLimits> = {}): Promise<{ b: Broker; port: number; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmq-session-'))
  const store = openLmdbStore({ path: dir })
  const b = createBroker({ id: 'u1', store, limits })
  const addr = await b.listen({ host: '127.0.0.1', port: 0 })
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  cleanups.push(() => store.close())
  cleanups.push(() => b.close())
  return { b, port: addr.port, dir }
}

class Client {
  packets: Packet[] = []
  #parser: ReturnType<typeof mqttPacket.parser>
  constructor(readonly socket: net.Socket, readonly version: 4 | 5) {
    this.#parser = mqttPacket.parser({ protocolVersion: version })
    this.#parser.on('packet', (p) => this.packets.push(p))
    socket.on('data', (d) => this.#parser.parse(d))
    cleanups.push(() => void socket.destroy())
  }
  static async open(port: number, clientId: string, version: 4 | 5, extra: Record<string, unknown> = {}): Promise<Client> {
    const s = await new Promise<net.Socket>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => resolve(sock))
    })
    const c = new Client(s, version)
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId, clean: true, keepalive: 0, ...extra } as Packet)
    await c.next('connack')
    return c
  }
  send(p: Packet): void {
    this.socket.write(mqttPacket.generate(p, { protocolVersion: this.version }))
  }
  async waitCount(cmd: string, n: number): Promise<Packet[]> {
    const end = Date.now() + 5000
    while (this.packets.filter((p) => p.cmd === cmd).length < n) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${n} ${cmd}`)
      await new Promise((r) => setTimeout(r, 10))
    }
    return this.packets.filter((p) => p.cmd === cmd)
  }
  async next(cmd: string): Promise<Packet> {
    const [p] = await this.waitCount(cmd, 1)
    this.packets.splice(this.packets.indexOf(p!), 1)
    return p!
  }
  async subscribe(topic: string, qos: 0 | 1 | 2): Promise<void> {
    this.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] } as Packet)
    await this.next('suback')
  }
  publish(topic: string, payload: string, qos: 0 | 1 | 2, messageId?: number): void {
    this.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, messageId, retain: false, dup: false } as Packet)
  }
}

const pubs = (c: Client) => c.packets.filter((p) => p.cmd === 'publish') as Array<Packet & { messageId: number; payload: Buffer }>

describe('session', () => {
  it('keeps at most Receive Maximum QoS 1 messages in flight and sends the rest after PUBACK', async () => {
    const { port } = await broker()
    const sub = await Client.open(port, 'rm-sub', 5, { properties: { receiveMaximum: 2 } })
    await sub.subscribe('w/t', 1)
    const pub = await Client.open(port, 'rm-pub', 5)
    for (let i = 1; i <= 5; i++) pub.publish('w/t', `m${i}`, 1, i)
    await pub.waitCount('puback', 5)
    await sub.waitCount('publish', 2)
    // the window is full: a third only after an acknowledgement
    const probe = await Client.open(port, 'probe', 5)
    probe.send({ cmd: 'pingreq' } as Packet)
    await probe.next('pingresp')
    expect(pubs(sub)).toHaveLength(2)
    sub.send({ cmd: 'puback', messageId: pubs(sub)[0]!.messageId } as Packet)
    await sub.waitCount('publish', 3)
    for (const p of pubs(sub).slice(1)) sub.send({ cmd: 'puback', messageId: p.messageId } as Packet)
    await sub.waitCount('publish', 5)
    expect(pubs(sub).map((p) => p.payload.toString())).toEqual(['m1', 'm2', 'm3', 'm4', 'm5'])
    // packet IDs in flight at the same time are distinct
    const ids = pubs(sub).slice(0, 2).map((p) => p.messageId)
    expect(new Set(ids).size).toBe(2)
    expect(ids.every((id) => id > 0)).toBe(true)
  })

  it.each(['drop-oldest', 'drop-new'] as const)('bounds the queue (%s)', async (policy) => {
    const { port } = await broker({ maxQueue: 2, queueOverflow: policy })
    const sub = await Client.open(port, 'q-sub', 5, { properties: { receiveMaximum: 1 } })
    await sub.subscribe('q/t', 1)
    const pub = await Client.open(port, 'q-pub', 5)
    // 1 in flight + 2 queued; the 4th and 5th overflow
    for (let i = 1; i <= 5; i++) pub.publish('q/t', `m${i}`, 1, i)
    await pub.waitCount('puback', 5)
    const seen: string[] = []
    for (let n = 1; n <= 3; n++) {
      const got = await sub.waitCount('publish', n)
      const p = got[n - 1] as Packet & { messageId: number; payload: Buffer }
      seen.push(p.payload.toString())
      sub.send({ cmd: 'puback', messageId: p.messageId } as Packet)
    }
    expect(seen).toEqual(policy === 'drop-oldest' ? ['m1', 'm4', 'm5'] : ['m1', 'm2', 'm3'])
  })

  it('sends QoS 1 messages that waited for a congested socket once it drains, without any PUBACK', async () => {
    const { port } = await broker({ maxWriteBuffer: 64 * 1024 })
    const sub = await Client.open(port, 'drain-sub', 5, { properties: { receiveMaximum: 1000 } })
    await sub.subscribe('d/t', 1)
    sub.socket.pause() // stop reading: kernel buffers fill, then the broker's
    const pub = await Client.open(port, 'drain-pub', 5)
    const payload = 'x'.repeat(16 * 1024)
    for (let i = 1; i <= 200; i++) pub.publish('d/t', `${i}:${payload}`, 1, i)
    await pub.waitCount('puback', 200)
    // nothing is acknowledged: only the socket draining can move the queued messages
    sub.socket.resume()
    const got = await sub.waitCount('publish', 200)
    expect(got.map((p) => Number((p as Packet & { payload: Buffer }).payload.toString().split(':')[0]))).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
  })

  it('completes the outgoing QoS 2 handshake', async () => {
    const { port } = await broker()
    const sub = await Client.open(port, 'q2-sub', 4)
    await sub.subscribe('q2/t', 2)
    const pub = await Client.open(port, 'q2-pub', 4)
    pub.publish('q2/t', 'x', 2, 9)
    await pub.next('pubrec')
    pub.send({ cmd: 'pubrel', messageId: 9 } as Packet)
    await pub.next('pubcomp')
    const [p] = (await sub.waitCount('publish', 1)) as Array<Packet & { messageId: number }>
    sub.send({ cmd: 'pubrec', messageId: p!.messageId } as Packet)
    const rel = (await sub.next('pubrel')) as Packet & { messageId: number }
    expect(rel.messageId).toBe(p!.messageId)
    sub.send({ cmd: 'pubcomp', messageId: p!.messageId } as Packet)
    // a resent QoS 2 PUBLISH with a new ID is a new message; the same ID before PUBREL is not
    pub.publish('q2/t', 'y', 2, 10)
    pub.publish('q2/t', 'y', 2, 10)
    await pub.waitCount('pubrec', 2)
    pub.send({ cmd: 'pubrel', messageId: 10 } as Packet)
    await pub.next('pubcomp')
    await sub.waitCount('publish', 2)
    const probe = await Client.open(port, 'probe2', 4)
    probe.send({ cmd: 'pingreq' } as Packet)
    await probe.next('pingresp')
    expect(pubs(sub)).toHaveLength(2)
  })

  it('stores a session record at connect for persistent sessions only', async () => {
    const { b, port } = await broker()
    await Client.open(port, 'clean-v4', 4)
    await Client.open(port, 'clean-v5', 5, { clean: true, properties: { sessionExpiryInterval: 0 } })
    await Client.open(port, 'kept-v4', 4, { clean: false })
    await Client.open(port, 'kept-v5', 5, { clean: true, properties: { sessionExpiryInterval: 60 } })
    await b.store.flushed()
    expect(b.store.getSession('clean-v4')).toBeUndefined()
    expect(b.store.getSession('clean-v5')).toBeUndefined()
    expect(b.store.getSession('kept-v4')?.expiryInterval).toBe(0xffffffff)
    expect(b.store.getSession('kept-v5')?.expiryInterval).toBe(60)
    expect([...b.store.listSessions()].map((r) => r.clientId).sort()).toEqual(['kept-v4', 'kept-v5'])
  })

  it('persists subscriptions of a persistent session in the store', async () => {
    const { b, port } = await broker()
    const c = await Client.open(port, 'persisted', 4, { clean: false })
    await c.subscribe('p/+', 1)
    await b.store.flushed()
    expect(b.store.getSubscriptions('persisted').map((s) => s.filter)).toEqual(['p/+'])
    expect(b.store.getSession('persisted')?.expiryInterval).toBe(0xffffffff)
    const clean = await Client.open(port, 'volatile', 4)
    await clean.subscribe('v/+', 1)
    await b.store.flushed()
    expect(b.store.getSubscriptions('volatile')).toEqual([])
    expect(b.routeSnapshot().map((r) => r.filter).sort()).toEqual(['p/+', 'v/+'])
  })
})

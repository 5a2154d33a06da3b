// Session lifecycle over time (will delay, session expiry, message expiry), ring ownership
// (--ring), and Debian's mosquitto clients.

import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Placement } from '../../src/ring/placement.js'
import { parseRingSpec } from '../../src/ring/spec.js'
import { encodeProxyV2 } from '../../src/mqtt/proxy-protocol.js'
import { cleanupTmp, stopAll, tmpDir } from '../helpers/process.js'
import { closeClients, collect, connect, connectLater, metric, RawClient, startWorker, waitFor } from './worker-helpers.js'

const run = promisify(execFile)

afterEach(closeClients)
afterAll(async () => {
  await stopAll()
  cleanupTmp()
})

describe('session lifecycle', () => {
  it('publishes a delayed will once the delay passes', async () => {
    const w = await startWorker()
    const watcher = await connect(w, { protocolVersion: 5 })
    const got = collect(watcher)
    await watcher.subscribeAsync('life/will', { qos: 1 })
    const c = await connect(w, {
      protocolVersion: 5, clientId: 'delayed', clean: false, properties: { sessionExpiryInterval: 60 },
      will: { topic: 'life/will', payload: Buffer.from('late'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
    })
    c.stream.destroy()
    await waitFor(() => got.length === 1, 10_000, 'delayed will')
    expect(got[0]!.payload).toBe('late')
  })

  it('expires an offline session after its Session Expiry Interval', async () => {
    const w = await startWorker()
    const c = await connect(w, { protocolVersion: 5, clientId: 'expiring', clean: false, properties: { sessionExpiryInterval: 1 } })
    await c.subscribeAsync('life/exp', { qos: 1 })
    await c.endAsync()
    expect(await metric(w, 'ringmq_sessions', { state: 'offline' })).toBe(1)
    const end = Date.now() + 10_000
    while ((await metric(w, 'ringmq_sessions', { state: 'offline' })) > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100))
    expect(await metric(w, 'ringmq_sessions', { state: 'offline' })).toBe(0)
    const again = connectLater(w, { protocolVersion: 5, clientId: 'expiring', clean: false, properties: { sessionExpiryInterval: 1 } })
    expect(await new Promise<boolean>((resolve) => again.once('connect', (p) => resolve(p.sessionPresent)))).toBe(false)
  })

  it('does not deliver a queued message whose expiry passed', async () => {
    const w = await startWorker()
    const props = { sessionExpiryInterval: 300 }
    const c = await connect(w, { protocolVersion: 5, clientId: 'msgexp', clean: false, properties: props })
    await c.subscribeAsync('life/msgexp', { qos: 1 })
    await c.endAsync()
    const pub = await connect(w, { protocolVersion: 5 })
    await pub.publishAsync('life/msgexp', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } })
    await pub.publishAsync('life/msgexp', 'long', { qos: 1, properties: { messageExpiryInterval: 300 } })
    const until = Date.now() + 1100
    await waitFor(() => Date.now() > until, 5000, 'expiry to pass')
    const back = connectLater(w, { protocolVersion: 5, clientId: 'msgexp', clean: false, properties: props })
    const got = collect(back)
    await waitFor(() => got.length >= 1)
    expect(got.map((m) => m.payload)).toEqual(['long'])
    expect(await metric(w, 'ringmq_publishes_dropped_total', { reason: 'expired' })).toBeGreaterThan(0)
  })
})

describe('ring ownership', () => {
  it('refuses clients it does not own and assigns IDs it owns', async () => {
    const dir = tmpDir('ringmq-ring-')
    const spec = { epoch: 1, replicas: 1, vnodes: 64, workers: [
      { id: 'w1', mqtt: '127.0.0.1:1', peer: '127.0.0.1:2' },
      { id: 'w2', mqtt: '127.0.0.1:3', peer: '127.0.0.1:4' },
    ] }
    const file = path.join(dir, 'ring.json')
    fs.writeFileSync(file, JSON.stringify(spec))
    const placement = new Placement(parseRingSpec(spec))
    const ids = Array.from({ length: 50 }, (_, i) => `dev-${i}`)
    const mine = ids.find((id) => placement.isPref(id, 'w1'))!
    const theirs = ids.find((id) => !placement.isPref(id, 'w1'))!
    const w = await startWorker(['--ring', file])

    for (const version of [4, 5]) {
      const refused = await RawClient.open(w, version)
      const ack = (await refused.connect(theirs, version)) as { returnCode?: number; reasonCode?: number }
      expect(version === 5 ? ack.reasonCode : ack.returnCode).toBe(version === 5 ? 0x9c : 0x03)
      await refused.closed
    }
    const ok = await connect(w, { protocolVersion: 5, clientId: mine })
    expect(ok.connected).toBe(true)
    const anon = await connect(w, { protocolVersion: 5, clientId: '' })
    const assigned = (anon as unknown as { connackPacket?: { properties?: { assignedClientIdentifier?: string } } }).connackPacket?.properties?.assignedClientIdentifier
    expect(assigned).toBeTruthy()
    expect(placement.prefs(assigned!)[0]!.id).toBe('w1')
  })
})

describe('mosquitto clients', () => {
  it('carries QoS 2 from mosquitto_pub to mosquitto_sub (3.1.1 and 5.0)', async () => {
    const w = await startWorker()
    for (const v of ['mqttv311', 'mqttv5']) {
      const sub = run('mosquitto_sub', ['-V', v, '-p', String(w.port), '-t', `mosq/${v}`, '-q', '2', '-C', '2', '-W', '10'])
      // wait until the subscription is in place (observable through the SUBSCRIBE counter)
      const subscribed = Date.now() + 10_000
      while ((await metric(w, 'ringmq_packets_received_total', { type: 'subscribe' })) < (v === 'mqttv5' ? 2 : 1) && Date.now() < subscribed) await new Promise((r) => setTimeout(r, 50))
      await run('mosquitto_pub', ['-V', v, '-p', String(w.port), '-t', `mosq/${v}`, '-q', '2', '-m', 'one'])
      await run('mosquitto_pub', ['-V', v, '-p', String(w.port), '-t', `mosq/${v}`, '-q', '2', '-m', 'two'])
      const { stdout } = await sub
      expect(stdout.trim().split('\n')).toEqual(['one', 'two'])
    }
  })
})

describe('PROXY protocol', () => {
  it('accepts a connection after a v2 header and refuses one without', async () => {
    const w = await startWorker(['--proxy-protocol'])
    const raw = await RawClient.open(w)
    raw.send(encodeProxyV2({ address: '203.0.113.7', port: 40000 }, { address: '127.0.0.1', port: w.port }))
    const ack = (await raw.connect('proxied', 4)) as { returnCode?: number }
    expect(ack.returnCode).toBe(0)
    raw.send(Buffer.from([0xe0, 0x00]))
    await raw.closed
    const bare = await RawClient.open(w)
    bare.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'bare', clean: true, keepalive: 0 } as never)
    await bare.closed
    expect(bare.packets).toHaveLength(0)
    expect(await metric(w, 'ringmq_protocol_errors_total', { reason: 'bad_proxy_header' })).toBe(1)
  })
})

// Durability: after `kill -9` and a restart on the same data directory, every persistent
// session, subscription, acknowledged queued QoS 1 message and retained message is back; clean
// sessions and expired sessions are gone.

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { IPublishPacket } from 'mqtt-packet'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { cleanupTmp, stopAll, tmpDir } from '../helpers/process.js'
import { closeClients, collect, connect, connectLater, RawClient, startWorker, waitFor } from './worker-helpers.js'

const run = promisify(execFile)

afterEach(closeClients)
afterAll(async () => {
  await stopAll()
  cleanupTmp()
})

describe('worker restart', () => {
  it('restores sessions, subscriptions, queued QoS 1 and retained messages after kill -9', async () => {
    const data = tmpDir('ringmq-restart-')
    let w = await startWorker([], data)
    // a 5.0 persistent session and a 3.1.1 one, both offline with subscriptions
    const s5 = await connect(w, { protocolVersion: 5, clientId: 'dur5', clean: false, properties: { sessionExpiryInterval: 3600 } })
    await s5.subscribeAsync('dur/#', { qos: 1 })
    await s5.endAsync()
    const s4 = await connect(w, { protocolVersion: 4, clientId: 'dur4', clean: false })
    await s4.subscribeAsync('dur/+', { qos: 2 })
    await s4.endAsync()
    const pub = await connect(w, { protocolVersion: 4 })
    for (let i = 0; i < 20; i++) await pub.publishAsync('dur/q', `m${i}`, { qos: 1 })
    await pub.publishAsync('dur/retained', 'kept', { qos: 1, retain: true })
    await pub.endAsync()

    await w.proc.kill9()
    w = await startWorker([], data)

    for (const [id, protocolVersion, props] of [['dur5', 5, { sessionExpiryInterval: 3600 }], ['dur4', 4, undefined]] as const) {
      const c = connectLater(w, { protocolVersion, clientId: id, clean: false, ...(props ? { properties: props } : {}) })
      const got = collect(c)
      const present = await new Promise<boolean>((resolve) => c.once('connect', (p) => resolve(p.sessionPresent)))
      expect(present).toBe(true)
      await waitFor(() => got.filter((m) => m.topic === 'dur/q').length === 20, 10_000, `${id} queue`)
      expect(got.filter((m) => m.topic === 'dur/q').map((m) => m.payload)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
      // the subscription survived too: a new message arrives live
      const live = await connect(w, { protocolVersion: 4 })
      await live.publishAsync('dur/live', id, { qos: 1 })
      await waitFor(() => got.some((m) => m.topic === 'dur/live' && m.payload === id), 10_000, `${id} live`)
    }

    // retained, checked with Debian's mosquitto_sub
    const { stdout } = await run('mosquitto_sub', ['-p', String(w.port), '-t', 'dur/retained', '-C', '1', '-W', '5', '-v'])
    expect(stdout.trim()).toBe('dur/retained kept')
  })

  it('redelivers unacknowledged QoS 1 with DUP after a restart', async () => {
    const data = tmpDir('ringmq-restart-')
    let w = await startWorker([], data)
    const sub = await connect(w, { protocolVersion: 5, clientId: 'inflight', clean: false, properties: { sessionExpiryInterval: 3600 } })
    await sub.subscribeAsync('inf/t', { qos: 1 })
    // a client that never acknowledges: MQTT.js acks automatically, so drop its socket on receipt
    const first = new Promise<void>((resolve) => sub.stream.once('data', () => resolve()))
    ;(sub as unknown as { handleMessage: unknown }).handleMessage = () => undefined
    const pub = await connect(w, { protocolVersion: 5 })
    await pub.publishAsync('inf/t', 'again', { qos: 1 })
    await first
    sub.stream.destroy()
    await w.proc.kill9()
    w = await startWorker([], data)
    const c = connectLater(w, { protocolVersion: 5, clientId: 'inflight', clean: false, properties: { sessionExpiryInterval: 3600 } })
    const got = collect(c)
    await waitFor(() => got.length >= 1)
    expect(got[0]!.payload).toBe('again')
    expect(got[0]!.packet.dup).toBe(true)
  })

  it('QoS 1 burst to an online persistent session: after kill -9 exactly the unacknowledged messages come back', async () => {
    // inflight records are written behind and skipped when the PUBACK comes first (worker/inflight-writer.ts):
    // whatever the timing, every message acknowledged to its publisher and not by the subscriber must survive
    const data = tmpDir('ringmq-restart-')
    let w = await startWorker([], data)
    const sub = await RawClient.open(w)
    await sub.connect('burst', 4, { clean: false })
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'burst/t', qos: 1 }] })
    await sub.next('suback')
    const seen: number[] = []
    // acknowledges messages 0..99 only; the rest stay in the window (100 for 3.1.1)
    const ackFirst100 = (): boolean => {
      for (const p of sub.packets.splice(0)) {
        if (p.cmd !== 'publish') continue
        const i = Number((p as IPublishPacket).payload.toString())
        seen.push(i)
        if (i < 100) sub.send({ cmd: 'puback', messageId: (p as IPublishPacket).messageId! })
      }
      return seen.length >= 200
    }
    // a second persistent session that never acknowledges: a QoS 1 message to it is
    // acknowledged to its publisher only once its inflight record has committed
    const fenceSub = await RawClient.open(w)
    await fenceSub.connect('burst-fence', 4, { clean: false })
    fenceSub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'burst/fence', qos: 1 }] })
    await fenceSub.next('suback')
    const pub = await connect(w, { protocolVersion: 4 })
    await Promise.all(Array.from({ length: 200 }, (_, i) => pub.publishAsync('burst/t', String(i), { qos: 1 })))
    // all 200 written to the subscriber means its 100 PUBACKs were processed (window of 100)
    await waitFor(ackFirst100, 10_000, '200 messages at the subscriber')
    // commit fence: messages 100-199 were drained from the queue when 0-99 were acknowledged,
    // and their inflight records (DUP on redelivery) are written behind, in order, by the
    // inflight writer; the fence's record is written after them, and the retained write
    // after the deletes of the acknowledged records
    await pub.publishAsync('burst/fence', 'fence', { qos: 1, retain: true })
    fenceSub.destroy()
    sub.destroy()
    await w.proc.kill9()

    w = await startWorker([], data)
    const again = await RawClient.open(w)
    const ack = (await again.connect('burst', 4, { clean: false })) as { sessionPresent: boolean }
    expect(ack.sessionPresent).toBe(true)
    const back: IPublishPacket[] = []
    const ackAll = (): void => {
      for (const p of again.packets.splice(0)) {
        if (p.cmd !== 'publish') continue
        back.push(p as IPublishPacket)
        again.send({ cmd: 'puback', messageId: (p as IPublishPacket).messageId! })
      }
    }
    await waitFor(() => (ackAll(), back.length >= 100), 10_000, '100 redelivered')
    // a fence through the live subscription: nothing else was waiting before it
    const live = await connect(w, { protocolVersion: 4 })
    await live.publishAsync('burst/t', 'live', { qos: 1 })
    await waitFor(() => (ackAll(), back.some((p) => p.payload.toString() === 'live')), 10_000, 'live fence')
    const redelivered = back.filter((p) => p.payload.toString() !== 'live')
    expect(redelivered.map((p) => Number(p.payload.toString())).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => 100 + i))
    expect(redelivered.every((p) => p.dup)).toBe(true)
    again.destroy()
  })

  it('forgets clean sessions and expired sessions across a restart', async () => {
    const data = tmpDir('ringmq-restart-')
    let w = await startWorker([], data)
    const clean = await connect(w, { protocolVersion: 4, clientId: 'cleanone', clean: true })
    await clean.subscribeAsync('gone/t', { qos: 1 })
    await clean.endAsync()
    const short = await connect(w, { protocolVersion: 5, clientId: 'shortlived', clean: false, properties: { sessionExpiryInterval: 1 } })
    await short.subscribeAsync('gone/t', { qos: 1 })
    await short.endAsync()
    await w.proc.stop()
    // the 1 s expiry passes while the worker is down (observable: the file clock, not a timer race)
    const until = Date.now() + 1100
    await waitFor(() => Date.now() > until, 5000, 'expiry to pass')
    w = await startWorker([], data)
    const restored = w.proc.logs.find((l) => l.msg === 'state restored')!
    expect(restored.sessions).toBe(0)
    expect(restored.expiredSessions).toBe(1)
    const c = connectLater(w, { protocolVersion: 5, clientId: 'shortlived', clean: false, properties: { sessionExpiryInterval: 1 } })
    const present = await new Promise<boolean>((resolve) => c.once('connect', (p) => resolve(p.sessionPresent)))
    expect(present).toBe(false)
  })
})

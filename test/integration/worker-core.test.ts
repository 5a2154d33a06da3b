// Core broker flows against the real `ringmq worker` process with MQTT.js 3.1.1 and 5.0 clients.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { cleanupTmp, stopAll } from '../helpers/process.js'
import { closeClients, collect, connect, connectLater, metric, RawClient, startWorker, waitFor, type Worker } from './worker-helpers.js'

let w: Worker
beforeAll(async () => {
  w = await startWorker()
})
afterEach(closeClients)
afterAll(async () => {
  await stopAll()
  cleanupTmp()
})

describe.each([4, 5] as const)('MQTT protocol version %i', (protocolVersion) => {
  it.each([0, 1, 2] as const)('delivers QoS %i end to end', async (qos) => {
    const t = `core/v${protocolVersion}/q${qos}`
    const sub = await connect(w, { protocolVersion })
    const got = collect(sub)
    await sub.subscribeAsync(t, { qos })
    const pub = await connect(w, { protocolVersion })
    for (let i = 0; i < 5; i++) await pub.publishAsync(t, `m${i}`, { qos })
    await waitFor(() => got.length === 5)
    expect(got.map((m) => m.payload)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
    expect(got.every((m) => m.packet.qos === qos)).toBe(true)
  })

  it('downgrades to the subscription QoS', async () => {
    const t = `core/v${protocolVersion}/down`
    const sub = await connect(w, { protocolVersion })
    const got = collect(sub)
    await sub.subscribeAsync(t, { qos: 1 })
    const pub = await connect(w, { protocolVersion })
    await pub.publishAsync(t, 'x', { qos: 2 })
    await waitFor(() => got.length === 1)
    expect(got[0]!.packet.qos).toBe(1)
  })

  it('matches + and # and keeps $-topics away from root wildcards', async () => {
    const p = `core/v${protocolVersion}/wild`
    const sub = await connect(w, { protocolVersion })
    const got = collect(sub)
    await sub.subscribeAsync([`${p}/+/x`, `${p}/#`, '#'])
    const pub = await connect(w, { protocolVersion })
    await pub.publishAsync('$sys-like/none', 'hidden', { qos: 1 })
    await pub.publishAsync(`${p}/a/x`, 'both', { qos: 1 })
    await waitFor(() => got.some((m) => m.payload === 'both'))
    await pub.publishAsync(`${p}/end`, 'end', { qos: 1 })
    await waitFor(() => got.some((m) => m.payload === 'end'))
    // one copy for overlapping subscriptions [MQTT-3.3.4-2]; nothing for "$..." [MQTT-4.7.2-1]
    expect(got.filter((m) => m.payload === 'both')).toHaveLength(1)
    expect(got.some((m) => m.topic.startsWith('$'))).toBe(false)
  })

  it('stores, replaces and clears retained messages', async () => {
    const t = `core/v${protocolVersion}/retained`
    const pub = await connect(w, { protocolVersion })
    await pub.publishAsync(t, 'one', { qos: 1, retain: true })
    await pub.publishAsync(t, 'two', { qos: 1, retain: true })
    const s1 = await connect(w, { protocolVersion })
    const got1 = collect(s1)
    await s1.subscribeAsync(t, { qos: 1 })
    await waitFor(() => got1.length === 1)
    expect(got1[0]!.payload).toBe('two')
    expect(got1[0]!.packet.retain).toBe(true)
    // a live message to an existing subscriber is not flagged retain [MQTT-3.3.1-9]
    await pub.publishAsync(t, 'three', { qos: 1, retain: true })
    await waitFor(() => got1.length === 2)
    expect(got1[1]!.packet.retain).toBe(false)
    await pub.publishAsync(t, '', { qos: 1, retain: true })
    const s2 = await connect(w, { protocolVersion })
    const got2 = collect(s2)
    await s2.subscribeAsync(t, { qos: 1 })
    await s2.subscribeAsync(`${t}/probe`, { qos: 1 })
    await pub.publishAsync(`${t}/probe`, 'probe', { qos: 1 })
    await waitFor(() => got2.some((m) => m.payload === 'probe'))
    expect(got2.filter((m) => m.topic === t)).toHaveLength(0)
  })

  it('publishes the will on an ungraceful close, not after DISCONNECT', async () => {
    const t = `core/v${protocolVersion}/will`
    const watcher = await connect(w, { protocolVersion })
    const got = collect(watcher)
    await watcher.subscribeAsync(`${t}/#`, { qos: 1 })
    const graceful = await connect(w, { protocolVersion, will: { topic: `${t}/graceful`, payload: Buffer.from('no'), qos: 1, retain: false } })
    await graceful.endAsync()
    const crashing = await connect(w, { protocolVersion, will: { topic: `${t}/crash`, payload: Buffer.from('gone'), qos: 1, retain: false } })
    crashing.stream.destroy()
    await waitFor(() => got.some((m) => m.topic === `${t}/crash`))
    expect(got.some((m) => m.topic === `${t}/graceful`)).toBe(false)
  })

  it('takes over a session with the same client ID', async () => {
    const id = `takeover-v${protocolVersion}`
    const first = await connect(w, { protocolVersion, clientId: id })
    const disconnected = new Promise<number | undefined>((resolve) => {
      first.on('disconnect', (p) => resolve(p.reasonCode))
      first.on('close', () => resolve(undefined))
    })
    const second = await connect(w, { protocolVersion, clientId: id })
    const rc = await disconnected
    if (protocolVersion === 5) expect(rc).toBe(0x8e)
    expect(second.connected).toBe(true)
  })

  it('keeps a persistent session: session present and queued QoS 1 while offline', async () => {
    const id = `persist-v${protocolVersion}`
    const t = `core/v${protocolVersion}/persist`
    const props = protocolVersion === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}
    const a = await connect(w, { protocolVersion, clientId: id, clean: false, ...props })
    await a.subscribeAsync(t, { qos: 1 })
    await a.endAsync()
    const pub = await connect(w, { protocolVersion })
    for (let i = 0; i < 3; i++) await pub.publishAsync(t, `q${i}`, { qos: 1 })
    const b = connectLater(w, { protocolVersion, clientId: id, clean: false, ...props })
    const got = collect(b)
    const connack = new Promise<boolean>((resolve) => b.once('connect', (p) => resolve(p.sessionPresent)))
    expect(await connack).toBe(true)
    await waitFor(() => got.length === 3)
    expect(got.map((m) => m.payload)).toEqual(['q0', 'q1', 'q2'])
  })
})

describe('MQTT 5.0 features', () => {
  it('assigns a client ID to an empty one', async () => {
    const c = await connect(w, { protocolVersion: 5, clientId: '' })
    const ack = await new Promise<{ properties?: { assignedClientIdentifier?: string } }>((resolve) => {
      if (c.connected) resolve((c as unknown as { connackPacket: never }).connackPacket)
    })
    expect(ack.properties?.assignedClientIdentifier).toMatch(/^ringmq-/)
  })

  it('assigns a client ID to an empty one with 3.1.1 clean session, refuses it without', async () => {
    const ok = await connect(w, { protocolVersion: 4, clientId: '', clean: true })
    expect(ok.connected).toBe(true)
    const raw = await RawClient.open(w)
    // CONNECT 3.1.1, clean session 0, keepalive 0, empty client ID (MQTT.js refuses to build it)
    raw.send(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 0, 0, 0]))
    const ack = await raw.next('connack')
    expect((ack as { returnCode?: number }).returnCode).toBe(0x02)
    await raw.closed
  })

  it('sends one copy with the highest QoS and every subscription identifier', async () => {
    const t = 'v5/overlap/a'
    const sub = await connect(w, { protocolVersion: 5 })
    const got = collect(sub)
    await sub.subscribeAsync('v5/overlap/+', { qos: 0, properties: { subscriptionIdentifier: 7 } })
    await sub.subscribeAsync('v5/overlap/#', { qos: 2, properties: { subscriptionIdentifier: 9 } })
    const pub = await connect(w, { protocolVersion: 5 })
    await pub.publishAsync(t, 'x', { qos: 2 })
    await waitFor(() => got.length === 1)
    await pub.publishAsync('v5/overlap/b', 'end', { qos: 2 })
    await waitFor(() => got.length === 2)
    expect(got[0]!.packet.qos).toBe(2)
    const ids = got[0]!.packet.properties?.subscriptionIdentifier
    expect([ids].flat().sort()).toEqual([7, 9])
  })

  it('honours no-local, retain-as-published and retain handling 2', async () => {
    const t = 'v5/options'
    const pub = await connect(w, { protocolVersion: 5 })
    await pub.publishAsync(t, 'old', { qos: 1, retain: true })
    const c = await connect(w, { protocolVersion: 5 })
    const got = collect(c)
    await c.subscribeAsync(t, { qos: 1, nl: true, rap: true, rh: 2 })
    await c.publishAsync(t, 'mine', { qos: 1 })
    await pub.publishAsync(t, 'theirs', { qos: 1, retain: true })
    await waitFor(() => got.length >= 1)
    await pub.publishAsync(t, 'end', { qos: 1 })
    await waitFor(() => got.some((m) => m.payload === 'end'))
    expect(got.map((m) => m.payload)).toEqual(['theirs', 'end'])
    expect(got[0]!.packet.retain).toBe(true) // retain-as-published
    await pub.publishAsync(t, '', { qos: 1, retain: true })
  })

  it('round-robins a shared subscription across its members', async () => {
    const a = await connect(w, { protocolVersion: 5 })
    const b = await connect(w, { protocolVersion: 5 })
    const ga = collect(a)
    const gb = collect(b)
    await a.subscribeAsync('$share/g/v5/shared/+', { qos: 1 })
    await b.subscribeAsync('$share/g/v5/shared/+', { qos: 1 })
    const pub = await connect(w, { protocolVersion: 5 })
    for (let i = 0; i < 6; i++) await pub.publishAsync(`v5/shared/${i}`, `s${i}`, { qos: 1 })
    await waitFor(() => ga.length + gb.length === 6)
    expect(ga).toHaveLength(3)
    expect(gb).toHaveLength(3)
  })

  it('passes properties through and decrements message expiry', async () => {
    const t = 'v5/props'
    const pub = await connect(w, { protocolVersion: 5 })
    await pub.publishAsync(t, 'p', {
      qos: 1,
      retain: true,
      properties: {
        messageExpiryInterval: 100,
        contentType: 'text/plain',
        responseTopic: 'v5/reply',
        correlationData: Buffer.from('corr'),
        payloadFormatIndicator: true,
        userProperties: { a: '1', b: ['2', '3'] },
      },
    })
    const sub = await connect(w, { protocolVersion: 5 })
    const got = collect(sub)
    await sub.subscribeAsync(t, { qos: 1 })
    await waitFor(() => got.length === 1)
    const p = got[0]!.packet.properties!
    expect(p.contentType).toBe('text/plain')
    expect(p.responseTopic).toBe('v5/reply')
    expect(p.correlationData?.toString()).toBe('corr')
    expect(p.payloadFormatIndicator).toBe(true)
    expect(p.userProperties).toEqual({ a: '1', b: ['2', '3'] })
    expect(p.messageExpiryInterval).toBeGreaterThan(0)
    expect(p.messageExpiryInterval).toBeLessThanOrEqual(100)
    await pub.publishAsync(t, '', { qos: 1, retain: true })
  })

  it('resolves topic aliases from the client', async () => {
    const sub = await connect(w, { protocolVersion: 5 })
    const got = collect(sub)
    await sub.subscribeAsync('v5/alias', { qos: 1 })
    const pub = await connect(w, { protocolVersion: 5 })
    await pub.publishAsync('v5/alias', 'first', { qos: 1, properties: { topicAlias: 3 } })
    await pub.publishAsync('', 'second', { qos: 1, properties: { topicAlias: 3 } })
    await waitFor(() => got.length === 2)
    expect(got.map((m) => [m.topic, m.payload])).toEqual([['v5/alias', 'first'], ['v5/alias', 'second']])
  })

  it('uses topic aliases towards a client that allows them', async () => {
    const sub = await connect(w, { protocolVersion: 5, properties: { topicAliasMaximum: 5 } })
    const got = collect(sub)
    await sub.subscribeAsync('v5/alias-out', { qos: 0 })
    const pub = await connect(w, { protocolVersion: 5 })
    await pub.publishAsync('v5/alias-out', 'a', { qos: 1 })
    await pub.publishAsync('v5/alias-out', 'b', { qos: 1 })
    await waitFor(() => got.length === 2)
    expect(got.map((m) => m.topic)).toEqual(['v5/alias-out', 'v5/alias-out'])
    expect(got[1]!.packet.properties?.topicAlias).toBe(1)
  })

  it('publishes a will on DISCONNECT 0x04', async () => {
    const watcher = await connect(w, { protocolVersion: 5 })
    const got = collect(watcher)
    await watcher.subscribeAsync('v5/will04', { qos: 1 })
    const c = await connect(w, { protocolVersion: 5, will: { topic: 'v5/will04', payload: Buffer.from('asked'), qos: 1, retain: false } })
    await c.endAsync(false, { reasonCode: 0x04 })
    await waitFor(() => got.length === 1)
    expect(got[0]!.payload).toBe('asked')
  })

  it('closes an idle client after 1.5 x keepalive with DISCONNECT 0x8D', async () => {
    const raw = await RawClient.open(w, 5)
    await raw.connect('idle', 5, { keepalive: 1 })
    await raw.closed
    const d = raw.packets.find((p) => p.cmd === 'disconnect') as { reasonCode?: number } | undefined
    expect(d?.reasonCode).toBe(0x8d)
    expect(await metric(w, 'ringmq_protocol_errors_total', { reason: 'keepalive_timeout' })).toBeGreaterThan(0)
  })

  it('answers malformed filters with reason 0x8F and keeps the client', async () => {
    const raw = await RawClient.open(w, 5)
    await raw.connect('badfilter', 5)
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'v5/ok', qos: 1 }, { topic: 'v5/#/bad', qos: 1 }, { topic: '$share/g+/x', qos: 0 }] } as never, 5)
    const ack = (await raw.next('suback')) as { granted: number[] }
    expect(ack.granted).toEqual([1, 0x8f, 0x8f])
    raw.send({ cmd: 'pingreq' }, 5)
    await raw.next('pingresp')
    raw.destroy()
  })
})

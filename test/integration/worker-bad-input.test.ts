// Bad input over raw sockets: each case gets the spec's reaction (reason code or close), a
// counter in protocol_errors_total, and the worker keeps serving everyone else.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { cleanupTmp, stopAll } from '../helpers/process.js'
import { closeClients, collect, connect, metric, RawClient, startWorker, waitFor, type Worker } from './worker-helpers.js'

let w: Worker
beforeAll(async () => {
  w = await startWorker(['--max-packet-size', '2048', '--connect-timeout-ms', '500', '--receive-maximum', '2', '--max-connections', '50'])
})
afterEach(closeClients)
afterAll(async () => {
  await stopAll()
  cleanupTmp()
})

async function stillServing(): Promise<void> {
  const c = await connect(w, { protocolVersion: 4 })
  const got = collect(c)
  await c.subscribeAsync('alive', { qos: 1 })
  await c.publishAsync('alive', 'yes', { qos: 1 })
  await waitFor(() => got.length === 1)
}

async function errors(reason: string): Promise<number> {
  return metric(w, 'ringmq_protocol_errors_total', { reason })
}

describe('bad input', () => {
  it('closes on garbage bytes', async () => {
    const raw = await RawClient.open(w)
    raw.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'x'.repeat(100)))
    await raw.closed
    expect(raw.packets).toHaveLength(0)
    expect(await errors('malformed_packet')).toBeGreaterThan(0)
    await stillServing()
  })

  it('closes when the first packet is not CONNECT', async () => {
    const raw = await RawClient.open(w)
    raw.send({ cmd: 'publish', topic: 'x', payload: Buffer.from('y'), qos: 0, retain: false, dup: false })
    await raw.closed
    expect(await errors('first_packet_not_connect')).toBeGreaterThan(0)
    await stillServing()
  })

  it('closes a connection that sends no CONNECT in time', async () => {
    const raw = await RawClient.open(w)
    await raw.closed
    expect(await errors('connect_timeout')).toBeGreaterThan(0)
  })

  it('closes on a truncated-then-abandoned CONNECT at the deadline', async () => {
    const raw = await RawClient.open(w)
    raw.send(Buffer.from([0x10, 0x20, 0x00, 0x04, 0x4d]))
    await raw.closed
    expect(raw.packets).toHaveLength(0)
  })

  it('answers an oversized packet with DISCONNECT 0x95 (5.0)', async () => {
    const raw = await RawClient.open(w, 5)
    await raw.connect('big5', 5)
    raw.send({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(4096), qos: 0, retain: false, dup: false } as never, 5)
    await raw.closed
    const d = raw.packets.find((p) => p.cmd === 'disconnect') as { reasonCode?: number } | undefined
    expect(d?.reasonCode).toBe(0x95)
    expect(await errors('packet_too_large')).toBeGreaterThan(0)
    await stillServing()
  })

  it('announces its Maximum Packet Size and Receive Maximum in CONNACK', async () => {
    const raw = await RawClient.open(w, 5)
    const ack = (await raw.connect('limits5', 5)) as { properties?: { maximumPacketSize?: number; receiveMaximum?: number } }
    expect(ack.properties?.maximumPacketSize).toBe(2048)
    expect(ack.properties?.receiveMaximum).toBe(2)
    raw.destroy()
  })

  it('closes on a wildcard in a PUBLISH topic (5.0: DISCONNECT 0x90)', async () => {
    const raw = await RawClient.open(w, 5)
    await raw.connect('wild5', 5)
    raw.send({ cmd: 'publish', topic: 'a/+', payload: Buffer.from('x'), qos: 0, retain: false, dup: false } as never, 5)
    await raw.closed
    const d = raw.packets.find((p) => p.cmd === 'disconnect') as { reasonCode?: number } | undefined
    expect(d?.reasonCode).toBe(0x90)
    expect(await errors('bad_topic_name')).toBeGreaterThan(0)
  })

  it('closes on invalid UTF-8 and U+0000 in a topic (3.1.1)', async () => {
    for (const topic of [Buffer.from([0x61, 0xff, 0xfe]), Buffer.from([0x61, 0x00, 0x62])]) {
      const raw = await RawClient.open(w)
      await raw.connect(`utf8-${topic[1]}`, 4)
      raw.send(Buffer.concat([Buffer.from([0x30, 2 + topic.length + 1, 0, topic.length]), topic, Buffer.from('p')]))
      await raw.closed
    }
    expect(await errors('bad_topic_name')).toBeGreaterThan(0)
    await stillServing()
  })

  it('treats a second CONNECT as a protocol error (5.0: DISCONNECT 0x82)', async () => {
    const raw = await RawClient.open(w, 5)
    await raw.connect('twice', 5)
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'twice', clean: true, keepalive: 0 } as never, 5)
    await raw.closed
    const d = raw.packets.find((p) => p.cmd === 'disconnect') as { reasonCode?: number } | undefined
    expect(d?.reasonCode).toBe(0x82)
    expect(await errors('second_connect')).toBeGreaterThan(0)
  })

  it('closes on a QoS 1 PUBLISH with packet ID 0', async () => {
    const raw = await RawClient.open(w)
    await raw.connect('pid0', 4)
    raw.send(Buffer.from([0x32, 6, 0, 1, 0x74, 0, 0, 0x70]))
    await raw.closed
    expect(await errors('packet_id_zero')).toBeGreaterThan(0)
  })

  it('answers PUBREL for an unknown packet ID with PUBCOMP 0x92 and counts it', async () => {
    const raw = await RawClient.open(w, 5)
    await raw.connect('pubrel5', 5)
    raw.send({ cmd: 'pubrel', messageId: 77 } as never, 5)
    const comp = (await raw.next('pubcomp')) as { reasonCode?: number; messageId?: number }
    expect(comp.messageId).toBe(77)
    expect(comp.reasonCode).toBe(0x92)
    expect(await errors('unknown_packet_id')).toBeGreaterThan(0)
    raw.destroy()
  })

  it('disconnects with 0x93 a 5.0 client over the broker Receive Maximum', async () => {
    // QoS 2 PUBLISHes stay unacknowledged until PUBREL, which this client never sends
    const raw = await RawClient.open(w, 5)
    await raw.connect('flood5', 5)
    for (let id = 1; id <= 3; id++) raw.send({ cmd: 'publish', topic: 'rm', payload: Buffer.from('x'), qos: 2, messageId: id, retain: false, dup: false } as never, 5)
    await raw.closed
    const d = raw.packets.find((p) => p.cmd === 'disconnect') as { reasonCode?: number } | undefined
    expect(d?.reasonCode).toBe(0x93)
    await stillServing()
  })

  it('refuses an unsupported protocol level with CONNACK 0x01', async () => {
    const raw = await RawClient.open(w)
    raw.send(Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 9, 0x02, 0, 0, 0, 1, 0x61]))
    const ack = (await raw.next('connack')) as { returnCode?: number }
    expect(ack.returnCode).toBe(1)
    await raw.closed
  })

  it('refuses connections over --max-connections and keeps the others', async () => {
    const raws = await Promise.all(Array.from({ length: 55 }, () => RawClient.open(w)))
    // the ones over the limit wait for a CONNECT (to answer CONNACK 0x03/0x97) until the deadline, then close
    const end0 = Date.now() + 10_000
    while ((await metric(w, 'ringmq_connections_refused_total', { reason: 'max_connections' })) < 5 && Date.now() < end0) await new Promise((r) => setTimeout(r, 50))
    expect(await metric(w, 'ringmq_connections_refused_total', { reason: 'max_connections' })).toBeGreaterThanOrEqual(5)
    for (const r of raws) r.destroy()
    await Promise.all(raws.map((r) => r.closed))
    const open = async (): Promise<number> => metric(w, 'ringmq_connections')
    const end = Date.now() + 10_000
    while ((await open()) >= 50 && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
    await stillServing()
  })

  it('answers a CONNECT over --max-connections with CONNACK 0x03 (3.1.1) / 0x97 (5.0) and counts it', async () => {
    const before = await metric(w, 'ringmq_connections_refused_total', { reason: 'max_connections_connack' })
    const raws = await Promise.all(Array.from({ length: 55 }, () => RawClient.open(w)))
    const acks = (await Promise.all(raws.map((r, i) => r.connect(`full-${i}`, 4)))) as Array<{ returnCode?: number }>
    const refused = acks.filter((a) => a.returnCode !== 0)
    expect(refused.length).toBeGreaterThanOrEqual(5)
    expect(refused.every((a) => a.returnCode === 3)).toBe(true)
    const v5 = await RawClient.open(w, 5)
    const ack5 = (await v5.connect('full-v5', 5)) as { reasonCode?: number }
    expect(ack5.reasonCode).toBe(0x97)
    await v5.closed
    expect(await metric(w, 'ringmq_connections_refused_total', { reason: 'max_connections_connack' })).toBe(before + refused.length + 1)
    for (const r of raws) r.destroy()
    await Promise.all(raws.map((r) => r.closed))
    const end = Date.now() + 10_000
    while ((await metric(w, 'ringmq_connections')) >= 50 && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
    await stillServing()
  })
})

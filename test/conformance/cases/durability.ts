// Durable state across a broker restart: persistent sessions, their subscriptions, queued and
// inflight QoS 1/2 messages, retained messages, session expiry. Each case runs for a clean
// restart (SIGTERM) and, where the target keeps acknowledged state through it, a SIGKILL.
// Spec: [MQTT-3.1.2-4/-5] (3.1.1) and 3.1.2.11.2 (5.0) keep the session state, which includes
// QoS 1/2 messages pending and unacknowledged [MQTT-4.1.0-1]; retained messages [MQTT-3.3.1-5].
// Cases restart the broker, so they run one after another.

import { describe, expect, it } from 'vitest'
import { connectClient, endClient, uniq } from '../clients.js'
import type { AnyPacket, RawClient } from '../raw-client.js'
import { delay, itWith, rawConnect } from '../support.js'
import type { Target } from '../target.js'

type Mode = 'restart' | 'kill -9'

export function durabilityCases(target: () => Target): void {
  const bounce = (mode: Mode): Promise<void> => (mode === 'restart' ? target().restart() : target().kill9AndRestart())

  for (const mode of ['restart', 'kill -9'] as const) {
    const test = mode === 'restart' ? it : itWith('kill9')
    describe(`across a ${mode}`, () => {
      for (const v of [4, 5] as const) {
        test(`${v === 4 ? '3.1.1' : '5.0'}: session, subscription, queued QoS 1/2 and retained messages are back`, async () => {
          const ns = uniq('durable')
          const clientId = uniq('persistent')
          const session = v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}
          const a = await rawConnect(target(), v, { clientId, clean: false, ...session })
          a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${ns}/q/+`, qos: 2 }] })
          await a.raw.next('suback')
          await a.raw.disconnect()
          const pub = await connectClient(target(), { protocolVersion: 4 })
          await pub.client.publishAsync(`${ns}/q/1`, 'queued 1', { qos: 1 })
          await pub.client.publishAsync(`${ns}/q/2`, 'queued 2', { qos: 2 })
          await pub.client.publishAsync(`${ns}/retained`, 'kept', { qos: 1, retain: true })
          await bounce(mode)

          const again = await rawConnect(target(), v, { clientId, clean: false, ...session })
          expect(again.connack.sessionPresent).toBe(true)
          const q1 = await again.raw.next('publish')
          again.raw.send({ cmd: 'puback', messageId: q1.messageId })
          const q2 = await again.raw.next('publish')
          again.raw.send({ cmd: 'pubrec', messageId: q2.messageId })
          await again.raw.next('pubrel')
          again.raw.send({ cmd: 'pubcomp', messageId: q2.messageId })
          expect([[String(q1.payload), q1.qos], [String(q2.payload), q2.qos]]).toEqual([['queued 1', 1], ['queued 2', 2]])
          // the subscription itself survived
          const pub2 = await connectClient(target(), { protocolVersion: 4 })
          await pub2.client.publishAsync(`${ns}/q/3`, 'after', { qos: 1 })
          const live = await again.raw.next('publish')
          expect(String(live.payload)).toBe('after')
          again.raw.send({ cmd: 'puback', messageId: live.messageId })
          const late = await connectClient(target(), { protocolVersion: 4 })
          await late.client.subscribeAsync(`${ns}/retained`, { qos: 1 })
          const [r] = await late.messages.count(1)
          expect([r!.payload, r!.retain]).toEqual(['kept', true])
          await pub2.client.publishAsync(`${ns}/retained`, '', { qos: 1, retain: true })
          await again.raw.disconnect(v === 5 ? { reasonCode: 0, properties: { sessionExpiryInterval: 0 } } : {})
          await Promise.all([endClient(pub2), endClient(late)])
        })
      }

      test('inflight outgoing QoS 1 and QoS 2 (after PUBREC) resume: PUBLISH with DUP=1, then PUBREL [MQTT-4.4.0-1]', async () => {
        const ns = uniq('inflight')
        const clientId = uniq('inflight')
        const a = await rawConnect(target(), 4, { clientId, clean: false })
        a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${ns}/+`, qos: 2 }] })
        await a.raw.next('suback')
        const pub = await connectClient(target(), { protocolVersion: 4 })
        await pub.client.publishAsync(`${ns}/one`, 'unacked', { qos: 1 })
        await pub.client.publishAsync(`${ns}/two`, 'received', { qos: 2 })
        const p1 = await a.raw.next('publish')
        const p2 = await a.raw.next('publish')
        a.raw.send({ cmd: 'pubrec', messageId: p2.messageId })
        await a.raw.next('pubrel')
        await a.raw.sync() // the PUBREC was processed
        await bounce(mode)
        await a.raw.closed()
        const b = await rawConnect(target(), 4, { clientId, clean: false })
        expect(b.connack.sessionPresent).toBe(true)
        const got = [await b.raw.next(), await b.raw.next()]
        const r1 = got.find((p) => p.cmd === 'publish')!
        const r2 = got.find((p) => p.cmd === 'pubrel')!
        expect([r1.messageId, r1.dup, String(r1.payload)]).toEqual([p1.messageId, true, 'unacked'])
        expect(r2.messageId).toBe(p2.messageId)
        b.raw.send({ cmd: 'puback', messageId: r1.messageId })
        b.raw.send({ cmd: 'pubcomp', messageId: r2.messageId })
        expect(await b.raw.sync()).toEqual([])
        await b.raw.disconnect()
      })

      test('incoming QoS 2 (PUBREC sent, PUBREL not yet) completes after reconnect and reaches the subscriber [MQTT-4.3.3-10]', async () => {
        const topic = `${uniq('incoming')}/t`
        const clientId = uniq('publisher')
        const subId = uniq('sub')
        const seen: { payload: string; dup: boolean }[] = []
        const ackAll = (raw: RawClient, packets: AnyPacket[]): void => {
          for (const q of packets.filter((x) => x.cmd === 'publish')) {
            seen.push({ payload: String(q.payload), dup: q.dup })
            raw.send({ cmd: 'puback', messageId: q.messageId })
          }
        }
        const sub = await rawConnect(target(), 4, { clientId: subId, clean: false })
        sub.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] })
        await sub.raw.next('suback')
        const p = await rawConnect(target(), 4, { clientId, clean: false })
        p.raw.send({ cmd: 'publish', topic, payload: 'exactly once', qos: 2, messageId: 9 })
        await p.raw.next('pubrec')
        ackAll(sub.raw, await sub.raw.sync()) // delivered now or only after PUBREL: either is fine
        await sub.raw.sync()
        await bounce(mode)
        await Promise.all([p.raw.closed(), sub.raw.closed()])
        const p2 = await rawConnect(target(), 4, { clientId, clean: false })
        expect(p2.connack.sessionPresent).toBe(true)
        p2.raw.send({ cmd: 'pubrel', messageId: 9 })
        expect((await p2.raw.next('pubcomp')).messageId).toBe(9)
        p2.raw.send({ cmd: 'publish', topic, payload: 'marker', qos: 1, messageId: 10 })
        await p2.raw.next('puback')
        const s2 = await rawConnect(target(), 4, { clientId: subId, clean: false })
        while (!seen.some((x) => x.payload === 'marker')) ackAll(s2.raw, [await s2.raw.next('publish')])
        const copies = seen.filter((x) => x.payload === 'exactly once')
        expect(copies.length).toBeGreaterThanOrEqual(1)
        for (const extra of copies.slice(1)) expect(extra.dup).toBe(true) // QoS 1 hop: a resend, marked
        await Promise.all([p2.raw.disconnect(), s2.raw.disconnect()])
      })

      test('an expired session is gone after the restart', async () => {
        const clientId = uniq('expiring')
        const a = await rawConnect(target(), 5, { clientId, clean: true, properties: { sessionExpiryInterval: 1 } })
        await a.raw.disconnect()
        await bounce(mode)
        await delay(2500) // past the 1 s interval, counted across the restart
        const b = await rawConnect(target(), 5, { clientId, clean: false, properties: { sessionExpiryInterval: 0 } })
        expect(b.connack.sessionPresent).toBe(false)
        await b.raw.disconnect()
      })
    })
  }
}

// MQTT 3.1.1 cases: the Eclipse Paho interoperability suite (paho.mqtt.testing,
// interoperability/client_test.py) ported to MQTT.js and raw sockets, plus the spec rules its
// tests touch. Each case uses its own topic namespace and client IDs, so cases run concurrently.
// Paho waits with sleeps; here every "nothing else arrived" is shown by a later marker on the
// same path (a message from the same publisher, or a PINGREQ/PINGRESP round trip on the socket).

import { describe, expect, it } from 'vitest'
import { connectClient, endClient, uniq, type TestClient } from '../clients.js'
import { RawClient } from '../raw-client.js'
import { itSpecOnly, onRingmq, pahoTopics, rawConnect } from '../support.js'
import type { Target } from '../target.js'

export function pahoV311Cases(target: () => Target): void {
  const v4 = (opts: Parameters<typeof connectClient>[1] = {}): Promise<TestClient> =>
    connectClient(target(), { protocolVersion: 4, ...opts })

  describe.concurrent('Paho client_test.py (3.1.1)', () => {
    it('basic: connect, disconnect, reconnect; QoS 0/1/2 round trip', async () => {
      const { topics } = pahoTopics(uniq('basic'))
      const clientId = uniq('myclientid')
      const first = await v4({ clientId })
      expect(first.connack.returnCode).toBe(0)
      await endClient(first)
      const a = await v4({ clientId })
      const granted = await a.client.subscribeAsync(topics[0]!, { qos: 2 })
      expect(granted.map((g) => g.qos)).toEqual([2])
      await a.client.publishAsync(topics[0]!, 'qos 0', { qos: 0 })
      await a.client.publishAsync(topics[0]!, 'qos 1', { qos: 1 })
      await a.client.publishAsync(topics[0]!, 'qos 2', { qos: 2 })
      const got = await a.messages.count(3)
      // [MQTT-3.3.5-1] delivered with min(published QoS, granted QoS), in order [MQTT-4.6.0-6]
      expect(got.map((m) => [m.topic, m.payload, m.qos])).toEqual([
        [topics[0], 'qos 0', 0],
        [topics[0], 'qos 1', 1],
        [topics[0], 'qos 2', 2],
      ])
      await endClient(a)
    })

    it('basic: a second CONNECT on the same connection closes it [MQTT-3.1.0-2]', async () => {
      const { raw } = await rawConnect(target(), 4, { clientId: uniq('second') })
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: uniq('second'), clean: true, keepalive: 60 })
      const before = await raw.closedAfter()
      expect(before.filter((p) => p.cmd === 'connack')).toEqual([])
    })

    it('basic: a wrong protocol name ("hj") is not accepted [MQTT-3.1.2-1]', async () => {
      const raw = await RawClient.open(target())
      // CONNECT, protocol name "hj", level 4, clean session, keepalive 60, client ID "ab"
      raw.sendBytes([0x10, 12, 0, 2, 0x68, 0x6a, 4, 2, 0, 60, 0, 2, 0x61, 0x62])
      const before = await raw.closedAfter()
      expect(before.filter((p) => p.cmd === 'connack' && p.returnCode === 0)).toEqual([])
    })

    it('an unsupported protocol level gets CONNACK 0x01 and a close [MQTT-3.1.2-2]', async () => {
      const raw = await RawClient.open(target())
      raw.sendBytes([0x10, 14, 0, 4, 0x4d, 0x51, 0x54, 0x54, 9, 2, 0, 60, 0, 2, 0x61, 0x62])
      const before = await raw.closedAfter()
      expect(before.map((p) => [p.cmd, p.returnCode])).toEqual([['connack', 1]])
    })

    it('retained messages: stored per topic, sent on subscribe with RETAIN=1, cleared by an empty payload', async () => {
      const { topics, wild } = pahoTopics(uniq('retained'))
      const a = await v4()
      await a.client.publishAsync(topics[1]!, 'qos 0', { qos: 0, retain: true })
      await a.client.publishAsync(topics[2]!, 'qos 1', { qos: 1, retain: true })
      await a.client.publishAsync(topics[3]!, 'qos 2', { qos: 2, retain: true })
      const b = await v4()
      await b.client.subscribeAsync(wild[5]!, { qos: 2 })
      const got = await b.messages.count(3)
      // [MQTT-3.3.1-8] retained messages sent on subscribe carry RETAIN=1
      expect(got.map((m) => [m.topic, m.payload, m.qos, m.retain]).sort()).toEqual([
        [topics[1], 'qos 0', 0, true],
        [topics[2], 'qos 1', 1, true],
        [topics[3], 'qos 2', 2, true],
      ].sort())
      // [MQTT-3.3.1-10/11] a zero-byte retained message removes the retained message
      await a.client.publishAsync(topics[1]!, '', { qos: 0, retain: true })
      await a.client.publishAsync(topics[2]!, '', { qos: 1, retain: true })
      await a.client.publishAsync(topics[3]!, '', { qos: 2, retain: true })
      await a.client.publishAsync(topics[3]!, 'marker', { qos: 2 }) // same publisher: ordered after the clears
      await b.messages.find((m) => m.payload === 'marker')
      const c = await v4()
      await c.client.subscribeAsync(wild[5]!, { qos: 2 })
      await a.client.publishAsync(topics[3]!, 'marker 2', { qos: 1 })
      const after = await c.messages.count(1)
      expect(after.map((m) => m.payload)).toEqual(['marker 2'])
      await Promise.all([endClient(a), endClient(b), endClient(c)])
    })

    it('retained: a new retained message replaces the old; live subscribers get RETAIN=0 [MQTT-3.3.1-5, -9]', async () => {
      const ns = uniq('replace')
      const topic = `${ns}/t`
      const a = await v4()
      const live = await v4()
      await live.client.subscribeAsync(topic, { qos: 1 })
      await a.client.publishAsync(topic, 'one', { qos: 1, retain: true })
      await a.client.publishAsync(topic, 'two', { qos: 1, retain: true })
      const liveGot = await live.messages.count(2)
      expect(liveGot.map((m) => [m.payload, m.retain])).toEqual([['one', false], ['two', false]])
      const late = await v4()
      await late.client.subscribeAsync(topic, { qos: 1 })
      await a.client.publishAsync(topic, 'marker', { qos: 1 })
      const lateGot = await late.messages.count(2)
      expect(lateGot.map((m) => [m.payload, m.retain])).toEqual([['two', true], ['marker', false]])
      await Promise.all([endClient(a), endClient(live), endClient(late)])
    })

    it('offline message queueing: QoS 1 and 2 kept for a persistent session (QoS 0 optional)', async () => {
      const { topics, wild } = pahoTopics(uniq('offline'))
      const clientId = uniq('myclientid')
      const a = await v4({ clientId, clean: false })
      await a.client.subscribeAsync(wild[5]!, { qos: 2 })
      await endClient(a)
      const b = await v4()
      await b.client.publishAsync(topics[1]!, 'qos 0', { qos: 0 })
      await b.client.publishAsync(topics[2]!, 'qos 1', { qos: 1 })
      await b.client.publishAsync(topics[3]!, 'qos 2', { qos: 2 })
      const again = await v4({ clientId, clean: false })
      expect(again.connack.sessionPresent).toBe(true) // [MQTT-3.2.2-2]
      await b.client.publishAsync(topics[3]!, 'marker', { qos: 2 })
      const got = await again.messages.find((m) => m.payload === 'marker').then(() => again.messages.items)
      const payloads = got.map((m) => m.payload)
      expect(payloads).toContain('qos 1')
      expect(payloads).toContain('qos 2')
      expect([3, 4]).toContain(payloads.length) // with or without the QoS 0 message, then the marker
      await Promise.all([endClient(again), endClient(b)])
    })

    it('will message: published when the connection drops without DISCONNECT [MQTT-3.1.2-8]', async () => {
      const { topics } = pahoTopics(uniq('will'))
      const b = await v4()
      await b.client.subscribeAsync(topics[2]!, { qos: 2 })
      const { raw } = await rawConnect(target(), 4, {
        clientId: uniq('myclientid'),
        keepalive: 2,
        will: { topic: topics[2]!, payload: Buffer.from('client not disconnected'), qos: 1, retain: false },
      })
      await raw.destroy()
      const got = await b.messages.count(1)
      expect(got.map((m) => [m.topic, m.payload, m.qos])).toEqual([[topics[2], 'client not disconnected', 1]])
      await endClient(b)
    })

    it('will message: discarded on DISCONNECT; the server closes the connection [MQTT-3.14.4-1, -3]', async () => {
      const { topics } = pahoTopics(uniq('nowill'))
      const b = await v4()
      await b.client.subscribeAsync(topics[2]!, { qos: 1 })
      const { raw } = await rawConnect(target(), 4, {
        clientId: uniq('willer'),
        will: { topic: topics[2]!, payload: Buffer.from('should not be sent'), qos: 1, retain: false },
      })
      raw.send({ cmd: 'disconnect' })
      await raw.closed() // the broker has processed the DISCONNECT
      await b.client.publishAsync(topics[2]!, 'marker', { qos: 1 })
      await b.messages.find((m) => m.payload === 'marker')
      expect(b.messages.items.map((m) => m.payload)).toEqual(['marker'])
      await endClient(b)
    })

    // Mosquitto 2.0.11 sends one copy at QoS 1 here, against [MQTT-3.3.5-1].
    itSpecOnly('mosquitto: one copy at the lower QoS')('overlapping subscriptions: one message at the highest QoS, or one per subscription [MQTT-3.3.5-1]', async () => {
      const { topics, wild } = pahoTopics(uniq('overlap'))
      const a = await v4()
      await a.client.subscribeAsync({ [wild[6]!]: { qos: 2 }, [wild[0]!]: { qos: 1 } })
      await a.client.publishAsync(topics[3]!, 'overlapping topic filters', { qos: 2 })
      await a.client.publishAsync(topics[0]!, 'marker', { qos: 2 }) // matches TopicA/# only
      await a.messages.find((m) => m.payload === 'marker')
      const got = a.messages.items.filter((m) => m.payload !== 'marker').map((m) => m.qos).sort()
      expect([[2], [1, 2]]).toContainEqual(got)
      if (onRingmq) expect(got).toEqual([2]) // ringmq promises one copy at the highest QoS
      await endClient(a)
    })

    it('keepalive: silent client closed after 1.5 x keepalive and its will published [MQTT-3.1.2-24]', async () => {
      const { topics } = pahoTopics(uniq('keepalive'))
      const b = await v4()
      await b.client.subscribeAsync(topics[4]!, { qos: 2 })
      // raw: never sends PINGREQ
      const { raw } = await rawConnect(target(), 4, {
        clientId: uniq('silent'),
        keepalive: 1,
        will: { topic: topics[4]!, payload: Buffer.from('keepalive expiry'), qos: 0, retain: false },
      })
      await raw.closed(15000)
      const got = await b.messages.count(1, 15000)
      expect(got.map((m) => m.payload)).toEqual(['keepalive expiry'])
      await endClient(b)
    }, 30000)

    it('redelivery on reconnect: unacknowledged PUBLISH resent with DUP=1, PUBREL resent [MQTT-4.4.0-1]', async () => {
      const { topics, wild } = pahoTopics(uniq('redelivery'))
      const clientId = uniq('myclientid2')
      const first = await rawConnect(target(), 4, { clientId, clean: false })
      first.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: wild[6]!, qos: 2 }] })
      expect((await first.raw.next('suback')).granted).toEqual([2])
      const pub = await v4()
      await pub.client.publishAsync(topics[1]!, 'q1', { qos: 1 })
      await pub.client.publishAsync(topics[3]!, 'q2', { qos: 2 })
      await pub.client.publishAsync(topics[0]!, 'q2 released', { qos: 2 })
      // "paused" client: receives, never PUBACKs / PUBRECs the first two; PUBRECs the third only
      const p1 = await first.raw.next('publish')
      const p2 = await first.raw.next('publish')
      const p3 = await first.raw.next('publish')
      expect([p1.qos, p2.qos, p3.qos]).toEqual([1, 2, 2])
      first.raw.send({ cmd: 'pubrec', messageId: p3.messageId })
      const rel = await first.raw.next('pubrel')
      expect(rel.messageId).toBe(p3.messageId)
      await first.raw.destroy()

      const second = await rawConnect(target(), 4, { clientId, clean: false })
      expect(second.connack.sessionPresent).toBe(true)
      const resent = [await second.raw.next(), await second.raw.next(), await second.raw.next()]
      const byId = new Map(resent.map((p) => [p.messageId, p]))
      const r1 = byId.get(p1.messageId)!
      const r2 = byId.get(p2.messageId)!
      const r3 = byId.get(p3.messageId)!
      expect([r1.cmd, r1.dup, r1.qos, r1.topic, String(r1.payload)]).toEqual(['publish', true, 1, topics[1], 'q1'])
      expect([r2.cmd, r2.dup, r2.qos, r2.topic, String(r2.payload)]).toEqual(['publish', true, 2, topics[3], 'q2'])
      expect(r3.cmd).toBe('pubrel') // [MQTT-4.3.3-?] the PUBREC was seen: PUBREL, not PUBLISH
      second.raw.send({ cmd: 'puback', messageId: p1.messageId })
      second.raw.send({ cmd: 'pubrec', messageId: p2.messageId })
      expect((await second.raw.next('pubrel')).messageId).toBe(p2.messageId)
      second.raw.send({ cmd: 'pubcomp', messageId: p2.messageId })
      second.raw.send({ cmd: 'pubcomp', messageId: p3.messageId })
      expect(await second.raw.sync()).toEqual([]) // nothing else outstanding
      await second.raw.disconnect()
      await endClient(pub)
    })

    it('zero-length client ID: rejected (0x02) with CleanSession=0, accepted with CleanSession=1 [MQTT-3.1.3-7, -8]', async () => {
      const rejected = await RawClient.open(target())
      // CONNECT level 4, CleanSession=0, keepalive 60, empty client ID (mqtt-packet refuses to build it)
      rejected.sendBytes([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0, 0, 60, 0, 0])
      const before = await rejected.closedAfter()
      expect(before.map((p) => [p.cmd, p.returnCode])).toEqual([['connack', 2]])
      const accepted = await rawConnect(target(), 4, { clientId: '', clean: true })
      expect(accepted.connack.returnCode).toBe(0)
      expect(accepted.connack.sessionPresent).toBe(false)
      await accepted.raw.disconnect()
    })

    it('SUBACK grants the requested QoS per filter, in order [MQTT-3.8.4-5, -6]', async () => {
      const ns = uniq('suback')
      const { raw } = await rawConnect(target(), 4, { clientId: uniq('s') })
      raw.send({ cmd: 'subscribe', messageId: 42, subscriptions: [{ topic: `${ns}/a`, qos: 2 }, { topic: `${ns}/b`, qos: 0 }, { topic: `${ns}/+`, qos: 1 }] })
      const suback = await raw.next('suback')
      expect([suback.messageId, suback.granted]).toEqual([42, [2, 0, 1]])
      await raw.disconnect()
    })

    it('$-topics: not matched by filters starting with a wildcard [MQTT-4.7.2-1]', async () => {
      const ns = uniq('dollar')
      const b = await v4()
      await b.client.subscribeAsync({ '#': { qos: 1 }, '+/+': { qos: 1 }, [`$${ns}/#`]: { qos: 1 } })
      await b.client.publishAsync(`$${ns}/TopicA/B`, 'dollar', { qos: 1 })
      // the explicit $ subscription gets it exactly once; the wildcard filters add no copy
      await b.client.publishAsync(`$${ns}/TopicA/B`, 'marker', { qos: 1 })
      await b.messages.find((m) => m.payload === 'marker')
      expect(b.messages.items.filter((m) => m.topic.startsWith('$')).map((m) => m.payload)).toEqual(['dollar', 'marker'])
      await endClient(b)
    })

    it('unsubscribe: UNSUBACK echoes the packet ID, no more messages for that filter [MQTT-3.10.4-4]', async () => {
      const { topics } = pahoTopics(uniq('unsub'))
      const b = await v4()
      await b.client.subscribeAsync({ [topics[0]!]: { qos: 2 }, [topics[1]!]: { qos: 2 }, [topics[2]!]: { qos: 2 } })
      const unsuback = await b.client.unsubscribeAsync(topics[0]!)
      expect(unsuback?.cmd).toBe('unsuback')
      const a = await v4()
      await a.client.publishAsync(topics[0]!, 'topic 0 - unsubscribed', { qos: 1 })
      await a.client.publishAsync(topics[1]!, 'topic 1', { qos: 1 })
      await a.client.publishAsync(topics[2]!, 'topic 2', { qos: 1 })
      const got = await b.messages.count(2)
      await a.client.publishAsync(topics[2]!, 'marker', { qos: 1 })
      await b.messages.find((m) => m.payload === 'marker')
      expect(got.map((m) => m.payload)).toEqual(['topic 1', 'topic 2', 'marker'])
      await Promise.all([endClient(a), endClient(b)])
    })

    it('session present flag: 0 with CleanSession=1, 0 for a new and 1 for a stored session [MQTT-3.2.2-1, -2, -3]', async () => {
      const clientId = uniq('present')
      const c1 = await rawConnect(target(), 4, { clientId, clean: true })
      expect(c1.connack.sessionPresent).toBe(false)
      await c1.raw.disconnect()
      const c2 = await rawConnect(target(), 4, { clientId, clean: false })
      expect(c2.connack.sessionPresent).toBe(false)
      await c2.raw.disconnect()
      const c3 = await rawConnect(target(), 4, { clientId, clean: false })
      expect(c3.connack.sessionPresent).toBe(true)
      await c3.raw.disconnect()
      const c4 = await rawConnect(target(), 4, { clientId, clean: true })
      expect(c4.connack.sessionPresent).toBe(false)
      await c4.raw.disconnect()
    })

    it('session take-over: a new connection with the same client ID closes the old one [MQTT-3.1.4-2]', async () => {
      const clientId = uniq('takeover')
      const old = await rawConnect(target(), 4, { clientId })
      const fresh = await rawConnect(target(), 4, { clientId })
      expect(fresh.connack.returnCode).toBe(0)
      await old.raw.closed()
      expect(await fresh.raw.sync()).toEqual([])
      await fresh.raw.disconnect()
    })

    it('QoS 2: a re-sent PUBLISH (DUP=1) before PUBREL is delivered once [MQTT-4.3.3-2]', async () => {
      const topic = `${uniq('exactly-once')}/t`
      const sub = await v4()
      await sub.client.subscribeAsync(topic, { qos: 2 })
      const { raw } = await rawConnect(target(), 4, { clientId: uniq('pub') })
      raw.send({ cmd: 'publish', topic, payload: 'once', qos: 2, messageId: 7 })
      expect((await raw.next('pubrec')).messageId).toBe(7)
      raw.send({ cmd: 'publish', topic, payload: 'once', qos: 2, messageId: 7, dup: true })
      expect((await raw.next('pubrec')).messageId).toBe(7)
      raw.send({ cmd: 'pubrel', messageId: 7 })
      expect((await raw.next('pubcomp')).messageId).toBe(7)
      raw.send({ cmd: 'publish', topic, payload: 'marker', qos: 1, messageId: 8 })
      await raw.next('puback')
      await sub.messages.find((m) => m.payload === 'marker')
      expect(sub.messages.items.map((m) => m.payload)).toEqual(['once', 'marker'])
      await raw.disconnect()
      await endClient(sub)
    })

    it('topic matching: + one level, # any number including the parent [MQTT-4.7.1-2, -3]', async () => {
      const ns = uniq('match')
      const s = await v4()
      await s.client.subscribeAsync({ [`${ns}/sport/#`]: { qos: 1 }, [`${ns}/+/tennis`]: { qos: 1 } })
      const p = await v4()
      for (const t of ['sport', 'sport/tennis', 'sport/tennis/player1', 'golf/tennis', 'golf/x', 'sportx'])
        await p.client.publishAsync(`${ns}/${t}`, t, { qos: 1 })
      await p.client.publishAsync(`${ns}/sport`, 'marker', { qos: 1 })
      await s.messages.find((m) => m.payload === 'marker')
      // sport/tennis matches both filters: one copy or two (see overlapping subscriptions)
      const got = s.messages.items.map((m) => m.payload).filter((x) => x !== 'marker')
      expect([...new Set(got)].sort()).toEqual(['golf/tennis', 'sport', 'sport/tennis', 'sport/tennis/player1'])
      await Promise.all([endClient(s), endClient(p)])
    })

    it('QoS downgrade: delivered at min(published QoS, granted QoS) [MQTT-3.8.4-6]', async () => {
      const ns = uniq('downgrade')
      const s = await v4()
      await s.client.subscribeAsync({ [`${ns}/s0`]: { qos: 0 }, [`${ns}/s1`]: { qos: 1 }, [`${ns}/s2`]: { qos: 2 } })
      const p = await v4()
      const expected: [string, number][] = []
      for (const sub of [0, 1, 2] as const)
        for (const pub of [0, 1, 2] as const) {
          await p.client.publishAsync(`${ns}/s${sub}`, `${sub}${pub}`, { qos: pub })
          expected.push([`${sub}${pub}`, Math.min(sub, pub)])
        }
      expect((await s.messages.count(9)).map((m) => [m.payload, m.qos])).toEqual(expected)
      await Promise.all([endClient(s), endClient(p)])
    })

    it('ordering: QoS 1 messages from one publisher arrive in the order sent [MQTT-4.6.0-2, -6]', async () => {
      const topic = `${uniq('order')}/t`
      const s = await v4()
      await s.client.subscribeAsync(topic, { qos: 1 })
      const p = await v4()
      const n = 100
      await Promise.all(Array.from({ length: n }, (_, i) => p.client.publishAsync(topic, String(i), { qos: 1 })))
      expect((await s.messages.count(n)).map((m) => Number(m.payload))).toEqual(Array.from({ length: n }, (_, i) => i))
      await Promise.all([endClient(s), endClient(p)])
    })

    it('re-subscribing replaces the subscription and re-sends retained messages [MQTT-3.8.4-3]', async () => {
      const topic = `${uniq('resub')}/t`
      const p = await v4()
      await p.client.publishAsync(topic, 'retained', { qos: 1, retain: true })
      const s = await v4()
      await s.client.subscribeAsync(topic, { qos: 0 })
      await s.messages.count(1)
      await s.client.subscribeAsync(topic, { qos: 2 })
      await p.client.publishAsync(topic, 'after', { qos: 2 })
      const got = await s.messages.count(3)
      expect(got.map((m) => [m.payload, m.qos, m.retain])).toEqual([['retained', 0, true], ['retained', 1, true], ['after', 2, false]])
      await p.client.publishAsync(topic, 'marker', { qos: 2 })
      await s.messages.find((m) => m.payload === 'marker')
      expect(s.messages.items).toHaveLength(4) // one subscription: no second copy
      await p.client.publishAsync(topic, '', { qos: 1, retain: true })
      await Promise.all([endClient(s), endClient(p)])
    })

    it('UNSUBSCRIBE of a filter never subscribed still gets UNSUBACK [MQTT-3.10.4-5]', async () => {
      const { raw } = await rawConnect(target(), 4, { clientId: uniq('unsub-none') })
      raw.send({ cmd: 'unsubscribe', messageId: 77, unsubscriptions: [`${uniq('never')}/t`] })
      expect((await raw.next('unsuback')).messageId).toBe(77)
      await raw.disconnect()
    })

    it('will with RETAIN=1 is stored as a retained message [MQTT-3.1.2-17]', async () => {
      const topic = `${uniq('will-retained')}/t`
      const { raw } = await rawConnect(target(), 4, { clientId: uniq('w'), will: { topic, payload: Buffer.from('last words'), qos: 1, retain: true } })
      await raw.destroy()
      const late = await v4()
      await late.client.subscribeAsync(topic, { qos: 1 })
      const [m] = await late.messages.count(1)
      expect([m!.payload, m!.retain, m!.qos]).toEqual(['last words', true, 1])
      await late.client.publishAsync(topic, '', { qos: 1, retain: true })
      await endClient(late)
    })

    it('CleanSession=1 discards a stored session and its subscriptions [MQTT-3.1.2-6]', async () => {
      const topic = `${uniq('discard')}/t`
      const clientId = uniq('discard')
      const a = await rawConnect(target(), 4, { clientId, clean: false })
      a.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] })
      await a.raw.next('suback')
      await a.raw.disconnect()
      const b = await rawConnect(target(), 4, { clientId, clean: true })
      expect(b.connack.sessionPresent).toBe(false)
      const p = await v4()
      await p.client.publishAsync(topic, 'to a discarded subscription', { qos: 1 })
      expect(await b.raw.sync()).toEqual([]) // the PUBACK above came first: nothing was routed here
      await b.raw.disconnect()
      await endClient(p)
    })

    it('UTF-8 topics: multi-byte levels are matched and delivered unchanged [MQTT-1.5.3]', async () => {
      const ns = uniq('utf8')
      const s = await v4()
      await s.client.subscribeAsync(`${ns}/ümlaut/+/🙂`, { qos: 1 })
      const p = await v4()
      await p.client.publishAsync(`${ns}/ümlaut/日本/🙂`, 'ünïcødé', { qos: 1 })
      const [m] = await s.messages.count(1)
      expect([m!.topic, m!.payload]).toEqual([`${ns}/ümlaut/日本/🙂`, 'ünïcødé'])
      await Promise.all([endClient(s), endClient(p)])
    })

    it('large payload (256 KiB) and a SUBSCRIBE with 100 filters', async () => {
      const ns = uniq('large')
      const s = await v4()
      const filters = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`${ns}/${i}`, { qos: (i % 3) as 0 | 1 | 2 }]))
      const granted = await s.client.subscribeAsync(filters)
      expect(granted.map((g) => g.qos)).toEqual(Array.from({ length: 100 }, (_, i) => i % 3))
      const p = await v4()
      const payload = Buffer.alloc(256 * 1024, 0x61)
      payload.write('end', payload.length - 3)
      await p.client.publishAsync(`${ns}/42`, payload, { qos: 1 })
      const [m] = await s.messages.count(1)
      expect([m!.payload.length, m!.payload.endsWith('end')]).toEqual([payload.length, true])
      await Promise.all([endClient(s), endClient(p)])
    })

    it('MQTT 3.1 (protocol level 3, "MQIsdp") clients connect and exchange messages', async () => {
      const topic = `${uniq('v31')}/t`
      const s = await connectClient(target(), { protocolVersion: 3, protocolId: 'MQIsdp' })
      expect(s.connack.returnCode).toBe(0)
      await s.client.subscribeAsync(topic, { qos: 1 })
      const p = await connectClient(target(), { protocolVersion: 4 })
      await p.client.publishAsync(topic, 'from 3.1.1', { qos: 1 })
      expect((await s.messages.count(1)).map((m) => [m.payload, m.qos])).toEqual([['from 3.1.1', 1]])
      await Promise.all([endClient(s), endClient(p)])
    })
  })
}

// Bad input over raw sockets, for 3.1.1 and 5.0: each case asserts the broker's reaction (a
// reason code or a closed connection), that a bystander connected before keeps getting messages
// afterwards, and on ringmq that `protocol_errors_total{reason}` counted it.
// Runs against CONFORMANCE_TARGET (ringmq by default, or mosquitto). See docs/conformance.md.
// Cases run one after another so each counter delta belongs to one case.

import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { closeClients, connectClient, uniq } from '../conformance/clients.js'
import { readMetric, metricIncreased } from '../conformance/metrics.js'
import { RawClient, type AnyPacket } from '../conformance/raw-client.js'
import { expectClosed, itSpecOnly, itWith, onRingmq, rawConnect } from '../conformance/support.js'
import { startTarget, type Target } from '../conformance/target.js'
import { Witness } from '../conformance/witness.js'
import { cleanupTmp, stopAll } from '../helpers/process.js'

const LIMITS = { connectTimeoutMs: 1500, maxPacketSize: 4096, receiveMaximum: 3 }
const PROTOCOL_ERRORS = 'protocol_errors_total'

let target: Target
let witness: Witness
let errorsBefore = 0

beforeAll(async () => {
  target = await startTarget(LIMITS)
  witness = await Witness.start(target)
})
afterAll(async () => {
  await witness?.stop()
  await closeClients()
  await target?.stop()
  await stopAll() // a worker whose start timed out
  cleanupTmp()
})
beforeEach(async () => {
  if (target.metricsUrl) errorsBefore = await readMetric(target.metricsUrl, PROTOCOL_ERRORS)
})

/** The bystander still gets messages; on ringmq the protocol error counter went up. */
async function afterCase(counted = true): Promise<void> {
  await witness.alive()
  if (counted && target.metricsUrl) await metricIncreased(target.metricsUrl, PROTOCOL_ERRORS, errorsBefore)
}

/** 'closed' once the broker closed the connection, or the first packet it sent instead. */
async function replyOrClose(raw: RawClient): Promise<string> {
  try {
    return (await raw.next()).cmd
  } catch (err) {
    if (raw.isClosed) return 'closed'
    throw err
  }
}

const connected = (v: 4 | 5): ReturnType<typeof rawConnect> => rawConnect(target, v, { clientId: uniq(`bad${v}`) })
const closeReasons = (v: 4 | 5, reasons: number[]) => ({ reasons, requireDisconnect: v === 5 && onRingmq })

describe('before CONNECT', () => {
  it('garbage bytes: connection closed, no CONNACK [MQTT-3.1.0-1]', async () => {
    const raw = await RawClient.open(target)
    // 'G' reads as a PUBACK header claiming 69 bytes; send more than that
    raw.sendBytes(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n' + 'X-Padding: ' + 'x'.repeat(200) + '\r\n\r\n'))
    expect(await raw.closedAfter()).toEqual([])
    await afterCase()
  })

  it('random bytes with an invalid packet type 0: closed', async () => {
    const raw = await RawClient.open(target)
    raw.sendBytes([0x00, 0x02, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 0x7f])
    expect(await raw.closedAfter()).toEqual([])
    await afterCase()
  })

  it('first packet not CONNECT (PUBLISH, PINGREQ): closed [MQTT-3.1.0-1]', async () => {
    for (const bytes of [[0x30, 0x05, 0x00, 0x01, 0x61, 0x68, 0x69], [0xc0, 0x00]]) {
      const raw = await RawClient.open(target)
      raw.sendBytes(bytes)
      expect(await raw.closedAfter()).toEqual([])
    }
    await afterCase()
  })

  itWith('connectTimeout')('CONNECT not sent within the deadline: closed', async () => {
    const raw = await RawClient.open(target)
    await raw.closed(LIMITS.connectTimeoutMs + 10000)
    await afterCase()
  })

  it('malformed CONNECT flags (reserved bit, will QoS 3, will retain without will, password without user name): closed [MQTT-3.1.2-3, -14, -15, -22]', async () => {
    // CONNECT "MQTT" level 4, keepalive 60, client ID "ab"; only the flags byte differs
    for (const flags of [0x03, 0x1e, 0x22, 0x42]) {
      const raw = await RawClient.open(target)
      raw.sendBytes([0x10, 14, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, 0, 60, 0, 2, 0x61, 0x62])
      const before = await raw.closedAfter()
      expect(before.filter((p) => p.cmd === 'connack' && p.returnCode === 0), `flags 0x${flags.toString(16)}`).toEqual([])
    }
    await afterCase()
  })

  it('truncated CONNECT, then the client closes: broker unaffected', async () => {
    const raw = await RawClient.open(target)
    raw.sendBytes([0x10, 0x20, 0x00, 0x04, 0x4d, 0x51]) // claims 32 bytes, sends 4
    raw.socket.end()
    await raw.closed()
    await afterCase(false) // nothing the broker could count: the client just went away
  })
})

for (const v of [4, 5] as const) {
  describe(`MQTT ${v === 4 ? '3.1.1' : '5.0'} after CONNECT`, () => {
    it('truncated PUBLISH, then the connection drops: treated as a network failure, will published', async () => {
      const willTopic = `${uniq('truncated-will')}/t`
      const watcher = await connectClient(target, { protocolVersion: 5 })
      await watcher.client.subscribeAsync(willTopic, { qos: 1 })
      const { raw } = await rawConnect(target, v, { clientId: uniq('trunc'), will: { topic: willTopic, payload: Buffer.from('gone'), qos: 1, retain: false } })
      raw.sendBytes([0x32, 0x40, 0x00, 0x01, 0x61]) // PUBLISH QoS 1 claiming 64 bytes, 3 sent
      await raw.destroy()
      expect((await watcher.messages.count(1)).map((m) => m.payload)).toEqual(['gone'])
      await afterCase(false)
    })

    it(`oversized packet (> ${LIMITS.maxPacketSize} B): ${v === 5 ? 'DISCONNECT 0x95, ' : ''}closed [MQTT-3.2.2-15]`, async () => {
      const { raw } = await connected(v)
      raw.send({ cmd: 'publish', topic: uniq('big'), payload: Buffer.alloc(LIMITS.maxPacketSize + 100), qos: 0 })
      await expectClosed(raw, { reasons: [0x95], requireDisconnect: v === 5 })
      await afterCase()
    })

    it('invalid UTF-8 in a topic: closed [MQTT-1.5.4-1]', async () => {
      const { raw } = await connected(v)
      // PUBLISH QoS 0, topic "a\xffb" (0xFF never appears in UTF-8)
      raw.sendBytes(v === 5 ? [0x30, 6, 0, 3, 0x61, 0xff, 0x62, 0] : [0x30, 5, 0, 3, 0x61, 0xff, 0x62])
      // 0x81 Malformed Packet is the rule's code; 0x90 Topic Name invalid is accepted too
      await expectClosed(raw, closeReasons(v, [0x81, 0x90]))
      await afterCase()
    })

    it('U+0000 in a topic: closed [MQTT-1.5.4-2]', async () => {
      const { raw } = await connected(v)
      raw.send({ cmd: 'publish', topic: 'a\u0000b', payload: 'x', qos: 0 })
      await expectClosed(raw, closeReasons(v, [0x81, 0x90]))
      await afterCase()
    })

    it('wildcard in a PUBLISH topic: closed [MQTT-3.3.2-2]', async () => {
      for (const topic of ['a/+/b', 'a/#']) {
        const { raw } = await connected(v)
        raw.send({ cmd: 'publish', topic, payload: 'x', qos: 1, messageId: 1 })
        const before = await raw.closedAfter()
        expect(before.filter((p) => p.cmd === 'puback')).toEqual([])
        const disconnect = before.find((p) => p.cmd === 'disconnect')
        if (disconnect) expect([0x81, 0x82, 0x90]).toContain(disconnect.reasonCode)
        if (v === 5 && onRingmq) expect(disconnect?.reasonCode).toBe(0x90)
      }
      await afterCase()
    })

    it('empty topic without a Topic Alias: closed [MQTT-4.7.3-1]', async () => {
      const { raw } = await connected(v)
      raw.send({ cmd: 'publish', topic: '', payload: 'x', qos: 0 })
      await expectClosed(raw, closeReasons(v, [0x81, 0x82, 0x90]))
      await afterCase()
    })

    it('PUBLISH with QoS 3: closed [MQTT-3.3.1-4]', async () => {
      const { raw } = await connected(v)
      raw.sendBytes(v === 5 ? [0x36, 6, 0, 1, 0x61, 0, 1, 0] : [0x36, 5, 0, 1, 0x61, 0, 1])
      await expectClosed(raw, closeReasons(v, [0x81]))
      await afterCase()
    })

    it('PUBLISH QoS 1 with packet ID 0: closed [MQTT-2.3.1-1]', async () => {
      const { raw } = await connected(v)
      raw.sendBytes(v === 5 ? [0x32, 6, 0, 1, 0x61, 0, 0, 0] : [0x32, 5, 0, 1, 0x61, 0, 0])
      await expectClosed(raw, closeReasons(v, [0x81, 0x82]))
      await afterCase()
    })

    it('SUBSCRIBE with reserved flags 0000 instead of 0010: closed [MQTT-3.8.1-1]', async () => {
      const { raw } = await connected(v)
      raw.sendBytes(v === 5 ? [0x80, 7, 0, 1, 0, 0, 1, 0x61, 1] : [0x80, 6, 0, 1, 0, 1, 0x61, 1])
      await expectClosed(raw, closeReasons(v, [0x81]))
      await afterCase()
    })

    it('SUBSCRIBE requesting QoS 3' + (v === 5 ? ' or with reserved option bits' : '') + ': closed [MQTT-3.8.3-4' + (v === 5 ? ', -5' : '') + ']', async () => {
      // SUBSCRIBE id 1, filter "a", options byte: QoS 3; then (5.0) reserved bits 6-7 set
      const variants = v === 5 ? [[0x82, 6, 0, 1, 0, 0, 1, 0x61, 0x03], [0x82, 6, 0, 1, 0, 0, 1, 0x61, 0xc1]] : [[0x82, 6, 0, 1, 0, 1, 0x61, 0x03]]
      for (const bytes of variants) {
        const { raw } = await connected(v)
        raw.sendBytes(bytes)
        const before = await raw.closedAfter()
        expect(before.filter((p) => p.cmd === 'suback')).toEqual([])
        const disconnect = before.find((p) => p.cmd === 'disconnect')
        if (disconnect) expect([0x81, 0x82]).toContain(disconnect.reasonCode)
      }
      await afterCase()
    })

    it('second CONNECT: closed' + (v === 5 ? ' (ringmq: DISCONNECT 0x82)' : '') + ' [MQTT-3.1.0-2]', async () => {
      const { raw } = await connected(v)
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: v, clientId: uniq('again'), clean: true, keepalive: 60 })
      await expectClosed(raw, closeReasons(v, [0x82]))
      await afterCase()
    })

    it('PUBREL for an unknown packet ID: PUBCOMP with that ID' + (v === 5 ? ' (ringmq: 0x92)' : '') + ', connection kept [MQTT-4.3.3-11]', async () => {
      const { raw } = await connected(v)
      raw.send({ cmd: 'pubrel', messageId: 4242 })
      const pubcomp = await raw.next('pubcomp')
      expect(pubcomp.messageId).toBe(4242)
      // 0x92 Packet Identifier not found is the 5.0 code; Mosquitto answers 0x00
      if (v === 5) expect(onRingmq ? [0x92] : [0x00, 0x92]).toContain(pubcomp.reasonCode ?? 0)
      expect(await raw.sync()).toEqual([])
      await raw.disconnect()
      await afterCase()
    })

    if (v === 4) {
      // a malformed filter is a protocol violation, which MUST close the connection [MQTT-4.8.0-1]
      it('malformed topic filters: closed [MQTT-4.7.1-2, -3; MQTT-4.8.0-1]', async () => {
        for (const filter of ['a/#/b', 'a+/b', 'a/b#']) {
          const { raw } = await connected(4)
          raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] })
          expect(await replyOrClose(raw)).toBe('closed')
        }
        await afterCase()
      })
    } else {
      it('malformed topic filters: SUBACK 0x8F for that filter (ringmq), or DISCONNECT and close (Mosquitto: 0x81)', async () => {
        for (const filter of ['a/#/b', 'a+/b', 'a/b#', '$share/g+/t']) {
          const { raw } = await connected(5)
          raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }, { topic: 'fine/+', qos: 1 }] })
          const first = await raw.next()
          if (onRingmq) expect(first.cmd).toBe('suback')
          if (first.cmd === 'suback') {
            expect(first.granted).toEqual([0x8f, 1]) // the valid filter beside it is granted
            expect(await raw.sync()).toEqual([])
            await raw.disconnect()
          } else {
            expect([first.cmd, first.reasonCode]).toSatisfy(([cmd, code]: [string, number]) => cmd === 'disconnect' && [0x81, 0x8f].includes(code))
            await raw.closed()
          }
        }
        await afterCase()
      })

      // Mosquitto 2.0.11 grants both as ordinary filters.
      itSpecOnly('mosquitto grants them')('shared subscription without a ShareName or without a filter: SUBACK 0x8F (ringmq) [MQTT-4.8.2-1, -2]', async () => {
        for (const filter of ['$share//t', '$share/g']) {
          const { raw } = await connected(5)
          raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] })
          expect((await raw.next('suback')).granted).toEqual([0x8f])
          await raw.disconnect()
        }
        await afterCase()
      })

      // Mosquitto answers PUBREC 0x97 (Quota exceeded) instead.
      itSpecOnly('mosquitto sends PUBREC 0x97')(`more than Receive Maximum (${LIMITS.receiveMaximum}) unacknowledged QoS 2 PUBLISHes: DISCONNECT 0x93 [3.3.4]`, async () => {
        const { raw, connack } = await connected(5)
        expect(connack.properties?.receiveMaximum).toBe(LIMITS.receiveMaximum)
        const topic = uniq('flood')
        for (let id = 1; id <= LIMITS.receiveMaximum + 1; id++) raw.send({ cmd: 'publish', topic, payload: 'x', qos: 2, messageId: id })
        const before = await raw.closedAfter()
        const codes = before.map((p: AnyPacket) => [p.cmd, p.reasonCode ?? 0])
        expect(codes.slice(0, LIMITS.receiveMaximum)).toEqual(Array(LIMITS.receiveMaximum).fill(['pubrec', 0]))
        expect(codes.slice(LIMITS.receiveMaximum)).toEqual([['disconnect', 0x93]])
        await afterCase()
      })

      // Mosquitto 2.0.11 accepts the PUBLISH.
      itSpecOnly('mosquitto accepts it')('Subscription Identifier in a client PUBLISH: DISCONNECT 0x82 [MQTT-3.3.4-6]', async () => {
        const { raw } = await connected(5)
        raw.send({ cmd: 'publish', topic: uniq('subid'), payload: 'x', qos: 0, properties: { subscriptionIdentifier: 5 } })
        await expectClosed(raw, { reasons: [0x82], requireDisconnect: true })
        await afterCase()
      })

      it('Topic Alias above the maximum: DISCONNECT 0x94 [MQTT-3.3.2-9]', async () => {
        const { raw, connack } = await connected(5)
        const max = connack.properties?.topicAliasMaximum ?? 0
        raw.send({ cmd: 'publish', topic: 'a', payload: 'x', qos: 0, properties: { topicAlias: max + 1 } })
        await expectClosed(raw, { reasons: [0x94], requireDisconnect: true })
        await afterCase()
      })
    }
  })
}

describe('slow subscriber', () => {
  it('a subscriber that stops reading does not stall anyone else; its QoS 0 overflow is dropped (and counted on ringmq)', async () => {
    const topic = `${uniq('flood')}/t`
    const { raw: slow } = await rawConnect(target, 4, { clientId: uniq('slow') })
    slow.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] })
    await slow.next('suback')
    slow.socket.pause() // stop reading: kernel buffers fill, then the broker's
    const droppedBefore = target.metricsUrl ? await readMetric(target.metricsUrl, 'publishes_dropped_total', { reason: 'slow_subscriber' }) : 0
    const { raw: flooder } = await rawConnect(target, 4, { clientId: uniq('flooder') })
    const one = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(1024, 0x2e), qos: 0, retain: false, dup: false })
    const batch = Buffer.concat(Array(1024).fill(one))
    for (let i = 0; i < 32; i++) {
      // ~32 MB, well past the socket buffers and the broker's per-client write limit
      if (!flooder.socket.write(batch)) await new Promise((r) => flooder.socket.once('drain', r))
    }
    expect(await flooder.sync()).toEqual([]) // the broker read it all and still answers the publisher
    await witness.alive() // and everyone else
    if (target.metricsUrl) {
      const dropped = await readMetric(target.metricsUrl, 'publishes_dropped_total', { reason: 'slow_subscriber' })
      expect(dropped).toBeGreaterThan(droppedBefore)
    }
    await flooder.disconnect()
    await slow.destroy()
  }, 60000)
})

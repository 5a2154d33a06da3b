// Debian's mosquitto_pub / mosquitto_sub (mosquitto-clients) against the target chosen by
// CONFORMANCE_TARGET (ringmq worker by default): QoS 0/1/2 for 3.1, 3.1.1 and 5.0, retained with
// -r, 5.0 properties, wills, persistent sessions. See docs/conformance.md.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniq } from '../conformance/clients.js'
import { killCliProcesses, pub, startSub } from '../conformance/mosquitto-cli.js'
import { startTarget, type Target } from '../conformance/target.js'
import { cleanupTmp, stopAll } from '../helpers/process.js'

let target: Target
beforeAll(async () => {
  target = await startTarget()
})
afterAll(async () => {
  await killCliProcesses()
  await target?.stop()
  await stopAll() // a worker whose start timed out
  cleanupTmp()
})

const VERSIONS = ['mqttv31', 'mqttv311', 'mqttv5'] as const

describe.concurrent('mosquitto_pub -> mosquitto_sub', () => {
  for (const v of VERSIONS) {
    for (const qos of [0, 1, 2]) {
      it(`${v} QoS ${qos}`, async () => {
        const topic = `${uniq('cli')}/q${qos}`
        const sub = startSub(target, ['-V', v, '-q', String(qos), '-t', topic, '-C', '1'])
        await sub.subscribed
        const res = await pub(target, ['-V', v, '-q', String(qos), '-t', topic, '-m', `hello ${qos}`])
        expect(res.code, res.output).toBe(0)
        const [m] = await sub.messages.count(1)
        expect([m!.topic, m!.qos, m!.retain, m!.payload]).toEqual([topic, qos, false, `hello ${qos}`])
        expect(await sub.exited).toBe(0)
      })
    }

    it(`${v} retained with -r: stored, sent with the retain flag, cleared with -r -n`, async () => {
      const topic = `${uniq('cli-retained')}/t`
      expect((await pub(target, ['-V', v, '-q', '1', '-r', '-t', topic, '-m', 'kept'])).code).toBe(0)
      const first = startSub(target, ['-V', v, '-q', '1', '-t', topic, '-C', '1'])
      const [m] = await first.messages.count(1)
      expect([m!.payload, m!.retain]).toEqual(['kept', true])
      expect(await first.exited).toBe(0)
      expect((await pub(target, ['-V', v, '-q', '1', '-r', '-t', topic, '-n'])).code).toBe(0)
      const second = startSub(target, ['-V', v, '-q', '1', '-t', topic, '-C', '1'])
      await second.subscribed
      expect((await pub(target, ['-V', v, '-q', '1', '-t', topic, '-m', 'marker'])).code).toBe(0)
      const [n] = await second.messages.count(1)
      expect([n!.payload, n!.retain]).toEqual(['marker', false]) // nothing retained came first
    })

    it(`${v} will: published when mosquitto_sub is killed`, async () => {
      const willTopic = `${uniq('cli-will')}/t`
      const watcher = startSub(target, ['-V', v, '-q', '1', '-t', willTopic, '-C', '1'])
      await watcher.subscribed
      const willer = startSub(target, ['-V', v, '-q', '1', '-t', `${willTopic}/unused`, '--will-topic', willTopic, '--will-payload', 'bye', '--will-qos', '1'])
      await willer.subscribed
      willer.child.kill('SIGKILL') // no DISCONNECT: the broker sees the socket close
      const [m] = await watcher.messages.count(1)
      expect([m!.topic, m!.payload, m!.qos]).toEqual([willTopic, 'bye', 1])
    })

    it(`${v} persistent session: messages published while mosquitto_sub is away are delivered on return`, async () => {
      const topic = `${uniq('cli-session')}/t`
      const id = uniq('cli-persistent')
      const expiry = v === 'mqttv5' ? ['-x', '300'] : []
      const first = startSub(target, ['-V', v, '-q', '1', '-c', '-i', id, ...expiry, '-t', topic])
      await first.subscribed
      first.child.kill('SIGINT') // mosquitto_sub disconnects cleanly
      expect(await first.exited).toBe(0)
      for (const payload of ['one', 'two']) expect((await pub(target, ['-V', v, '-q', '1', '-t', topic, '-m', payload])).code).toBe(0)
      const again = startSub(target, ['-V', v, '-q', '1', '-c', '-i', id, ...expiry, '-t', topic, '-C', '2'])
      const got = await again.messages.count(2)
      expect(got.map((m) => m.payload)).toEqual(['one', 'two'])
      expect(await again.exited).toBe(0)
    })
  }

  it('mqttv5 properties: user property and content type passed through (-D)', async () => {
    const topic = `${uniq('cli-props')}/t`
    const sub = startSub(target, ['-V', 'mqttv5', '-q', '1', '-t', topic, '-C', '1'])
    await sub.subscribed
    const res = await pub(target, ['-V', 'mqttv5', '-q', '1', '-t', topic, '-m', 'p', '-D', 'publish', 'user-property', 'k', 'v', '-D', 'publish', 'content-type', 'text/plain'])
    expect(res.code, res.output).toBe(0)
    const [m] = await sub.messages.count(1)
    expect([m!.userProperties, m!.contentType, m!.payload]).toEqual(['k:v', 'text/plain', 'p'])
  })

  it('mosquitto_pub -l: one message per line, in order, to a 3.1.1 subscriber from a 5.0 publisher', async () => {
    const topic = `${uniq('cli-lines')}/t`
    const sub = startSub(target, ['-V', 'mqttv311', '-q', '2', '-t', topic, '-C', '3'])
    await sub.subscribed
    const child = await import('node:child_process')
    const p = child.spawn('mosquitto_pub', ['-h', target.host, '-p', String(target.port), '-V', 'mqttv5', '-q', '2', '-t', topic, '-l'], { stdio: ['pipe', 'ignore', 'ignore'] })
    const code = new Promise((resolve) => p.once('exit', resolve))
    p.stdin!.end('a\nb\nc\n')
    expect(await code).toBe(0)
    expect((await sub.messages.count(3)).map((m) => [m.payload, m.qos])).toEqual([['a', 2], ['b', 2], ['c', 2]])
  })
})

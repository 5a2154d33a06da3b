// The HAProxy reference target must really route by client identifier on its consistent-hash
// ring (a config that silently falls back to round robin would make the comparison with
// ringmq's router meaningless). Two Mosquittos behind the bench's HAProxy config, each
// holding a retained message naming itself: a client that reconnects with the same ID must
// land on the same broker every time, and different IDs must use both.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { IPublishPacket } from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MqttConn } from '../../bench/gen/mqtt-conn.js'
import { startHaproxy } from '../../bench/targets/haproxy.js'
import { startMosquitto } from '../../bench/targets/mosquitto.js'
import type { ServerProcess } from '../../bench/targets/server-process.js'

const EP = (port: number) => ({ host: '127.0.0.1', port })

describe('bench HAProxy target', () => {
  const procs: ServerProcess[] = []
  let dir: string
  let front: number

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmq-bench-haproxy-'))
    const backends: number[] = []
    for (const name of ['m1', 'm2']) {
      const m = await startMosquitto({ dir }, name)
      procs.push(m.proc)
      backends.push(m.port)
      const c = await MqttConn.open(EP(m.port), 4)
      await c.connect(`seed-${name}`)
      await c.request({ cmd: 'publish', topic: 'bench/which', payload: Buffer.from(name), qos: 1, messageId: 1, retain: true, dup: false }, 'puback')
      await c.close()
    }
    const h = await startHaproxy({ dir }, backends)
    procs.push(h.proc)
    front = h.port
  })

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  async function backendOf(clientId: string): Promise<string> {
    const c = await MqttConn.open(EP(front), 4)
    try {
      await c.connect(clientId)
      const retained = c.next('publish')
      await c.subscribe('bench/which', 0, 1)
      return ((await retained) as IPublishPacket).payload.toString()
    } finally {
      await c.close()
    }
  }

  it('sends a client ID to the same broker on every connection, and spreads IDs over both', async () => {
    const seen = new Map<string, string>()
    for (let round = 0; round < 3; round++) {
      // an odd count: under round robin the same ID would alternate between the brokers
      for (let i = 0; i < 13; i++) {
        const id = `device-${i}`
        const b = await backendOf(id)
        if (round === 0) seen.set(id, b)
        else expect(b, `${id} on round ${round}`).toBe(seen.get(id))
      }
    }
    expect(new Set(seen.values())).toEqual(new Set(['m1', 'm2']))
  })
})

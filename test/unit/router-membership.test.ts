// Liveness probes (router/membership.ts) against real loopback listeners: a worker marked down
// comes back once a probe connects, and a probe refused marks it down.

import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { freePorts } from '../../bench/targets/server-process.js'
import { Membership } from '../../router/membership.js'
import { createLogger } from '../../src/log.js'
import type { RingSpec } from '../../src/ring/spec.js'

const servers: net.Server[] = []
let membership: Membership | null = null

afterEach(async () => {
  membership?.stop()
  membership = null
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

async function listener(): Promise<{ server: net.Server; port: number; accepted: () => number }> {
  let n = 0
  const server = net.createServer((s) => {
    n++
    s.destroy()
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as net.AddressInfo).port, accepted: () => n }
}

function spec(ports: number[]): RingSpec {
  return { epoch: 1, replicas: 2, vnodes: 64, workers: ports.map((p, i) => ({ id: `w${i + 1}`, mqtt: `127.0.0.1:${p}`, peer: '127.0.0.1:1', weight: 1 })) }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('router membership probes', () => {
  it('brings a worker marked down back once a probe connects', async () => {
    const w = await listener()
    membership = new Membership(spec([w.port]), createLogger({ name: 'test' }))
    membership.markDown('w1', 'test')
    expect(membership.isAlive('w1')).toBe(false)
    membership.startProbes(50, 1000)
    await until(() => membership!.isAlive('w1'), 'w1 up')
    expect(w.accepted()).toBeGreaterThan(0)
  })

  it('marks a worker down when its probe is refused, and keeps the others up', async () => {
    const up = await listener()
    // free below the ephemeral range: no other test's server gets it from listen(0)
    const [gone] = await freePorts(1)
    membership = new Membership(spec([up.port, gone!]), createLogger({ name: 'test' }))
    membership.startProbes(50, 1000)
    await until(() => !membership!.isAlive('w2'), 'w2 down')
    await until(() => up.accepted() > 0, 'a probe at w1')
    expect(membership.isAlive('w1')).toBe(true)
  })
})

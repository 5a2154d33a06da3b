// Maximum connections: the connection over the limit is refused, everyone else keeps being
// served, and a slot frees up when a client leaves. Runs against CONFORMANCE_TARGET (ringmq by
// default, or mosquitto). See docs/conformance.md.

import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeClients, uniq } from '../conformance/clients.js'
import { metricIncreased, readMetric } from '../conformance/metrics.js'
import { RawClient } from '../conformance/raw-client.js'
import { onRingmq } from '../conformance/support.js'
import { startTarget, type Target } from '../conformance/target.js'
import { Witness } from '../conformance/witness.js'
import { cleanupTmp, stopAll } from '../helpers/process.js'

const MAX = 4
const WITNESS_CONNECTIONS = 2
let target: Target
let witness: Witness

beforeAll(async () => {
  target = await startTarget({ maxConnections: MAX })
  witness = await Witness.start(target)
})
afterAll(async () => {
  await witness?.stop()
  await closeClients()
  await target?.stop()
  await stopAll() // a worker whose start timed out
  cleanupTmp()
})

/** Connects, or reports how the broker refused: 'closed' or the CONNACK return code. */
async function tryConnect(): Promise<{ ok: true; raw: RawClient } | { ok: false }> {
  const raw = await RawClient.open(target).catch(() => null)
  if (!raw) return { ok: false }
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: uniq('extra'), clean: true, keepalive: 60 })
  try {
    const connack = await raw.next('connack')
    if (connack.returnCode === 0) return { ok: true, raw }
  } catch {
    // closed without CONNACK
  }
  raw.socket.destroy()
  return { ok: false }
}

it(`connections above --max-connections (${MAX}) are refused; a freed slot is reusable`, async () => {
  const refusedBefore = target.metricsUrl ? await readMetric(target.metricsUrl, 'connections_refused_total') : 0
  // open connections until one is refused
  const held: RawClient[] = []
  for (let i = 0; i < MAX; i++) {
    const c = await tryConnect()
    if (!c.ok) break
    held.push(c.raw)
  }
  const open = WITNESS_CONNECTIONS + held.length
  // Mosquitto 2.0.11 admits one connection more than max_connections
  expect(open).toBe(onRingmq ? MAX : MAX + 1)
  if (target.metricsUrl) await metricIncreased(target.metricsUrl, 'connections_refused_total', refusedBefore)
  await witness.alive()
  await held.pop()!.disconnect()
  // the broker frees the slot once it has seen the close: poll until a connection is accepted
  const deadline = Date.now() + 10000
  let again = await tryConnect()
  while (!again.ok && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100))
    again = await tryConnect()
  }
  expect(again.ok).toBe(true)
  if (again.ok) await again.raw.disconnect()
  await Promise.all(held.map((h) => h.disconnect()))
  await witness.alive()
})

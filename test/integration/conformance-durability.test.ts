// Durable state across broker restarts (clean and kill -9) against the target chosen by
// CONFORMANCE_TARGET (ringmq worker by default, or mosquitto with persistence on, clean restarts
// only). See docs/conformance.md.

import { afterAll, beforeAll } from 'vitest'
import { closeClients } from '../conformance/clients.js'
import { durabilityCases } from '../conformance/cases/durability.js'
import { startTarget, type Target } from '../conformance/target.js'
import { cleanupTmp, stopAll } from '../helpers/process.js'

let target: Target
beforeAll(async () => {
  target = await startTarget({ persistent: true })
})
afterAll(async () => {
  await closeClients()
  await target?.stop()
  await stopAll() // a worker whose start timed out
  cleanupTmp()
})

durabilityCases(() => target)

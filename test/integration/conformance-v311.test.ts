// MQTT 3.1.1 conformance (Paho client_test.py port) against the target chosen by
// CONFORMANCE_TARGET (ringmq worker by default, or mosquitto). See docs/conformance.md.

import { afterAll, beforeAll } from 'vitest'
import { closeClients } from '../conformance/clients.js'
import { pahoV311Cases } from '../conformance/cases/paho-v311.js'
import { startTarget, type Target } from '../conformance/target.js'
import { cleanupTmp, stopAll } from '../helpers/process.js'

let target: Target
beforeAll(async () => {
  target = await startTarget()
})
afterAll(async () => {
  await closeClients()
  await target?.stop()
  await stopAll() // a worker whose start timed out
  cleanupTmp()
})

pahoV311Cases(() => target)

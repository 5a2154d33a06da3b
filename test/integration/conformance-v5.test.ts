// MQTT 5.0 conformance (Paho client_test5.py port) against the target chosen by
// CONFORMANCE_TARGET (ringmq worker by default, or mosquitto). See docs/conformance.md.

import { afterAll, beforeAll } from 'vitest'
import { closeClients } from '../conformance/clients.js'
import { pahoV5Cases, V5_LIMITS } from '../conformance/cases/paho-v5.js'
import { startTarget, type Target } from '../conformance/target.js'
import { cleanupTmp, stopAll } from '../helpers/process.js'

let target: Target
beforeAll(async () => {
  target = await startTarget(V5_LIMITS)
})
afterAll(async () => {
  await closeClients()
  await target?.stop()
  await stopAll() // a worker whose start timed out
  cleanupTmp()
})

pahoV5Cases(() => target)

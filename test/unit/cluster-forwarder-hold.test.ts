// The forwarder's hold at a high rate: a batch waits for more messages and goes out at the first
// client read after 2 ms (readDone), or at the backstop timer (also 2 ms) when no read comes.
// Fake timers (including performance.now) make the clock exact.

import { performance } from 'node:perf_hooks'
import { Registry } from 'prom-client'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Forwarder } from '../../src/cluster/forwarder.js'
import { FabricMetrics } from '../../src/cluster/metrics.js'
import { decodePublishBatch, type EncodedPeerMessage } from '../../src/cluster/peer-codec.js'
import type { Link } from '../../src/cluster/peer-link.js'
import { createLogger } from '../../src/log.js'
import type { BrokerMessage } from '../../src/mqtt/message.js'

const msg: BrokerMessage = { topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, origin: 'w1', publisherId: 'c' }

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] })
  // the forwarder reads node:perf_hooks' performance (the global one is a getter): fake time too
  vi.spyOn(performance, 'now').mockImplementation(() => globalThis.performance.now())
})
afterEach(() => {
  vi.restoreAllMocks()
  vi.useRealTimers()
})

/** A forwarder whose link to w2 records batch sizes, brought above the hold rate. */
function highRate() {
  const sent: number[] = []
  const link = {
    peerId: 'w2',
    send: (m: EncodedPeerMessage) => {
      const batch = decodePublishBatch(m.bytes)
      if (batch?.body === 'publish_batch') sent.push(batch.publish_batch.packed.length)
      return true
    },
    onDrain: () => undefined,
  } as unknown as Link
  const gauges = { epoch: () => 1, peers: () => [], localRoutes: () => 0, retained: () => 0 }
  const f = new Forwarder({ maxQueued: 10_000, maxQueuedBytes: 1 << 26, maxBatch: 10, maxBatchBytes: 1 << 20, metrics: new FabricMetrics(new Registry(), gauges), log: createLogger({ name: 'test' }) })
  f.attach(link, 3)
  // full batches back to back: the rate estimate goes above the hold threshold
  for (let i = 0; i < 30; i++) f.forward('w2', msg, [], true, null)
  vi.advanceTimersByTime(0) // the turn the first forward scheduled
  expect(sent).toHaveLength(3)
  return { f, sent }
}

describe('forwarder hold at a high rate', () => {
  it('holds a batch past the event-loop turn and sends it at the first read 2 ms after it started', () => {
    const { f, sent } = highRate()
    // the forwarder's clock moves, timers do not: only a read can release the batch here
    let clock = performance.now()
    vi.spyOn(performance, 'now').mockImplementation(() => clock)
    f.forward('w2', msg, [], true, null)
    clock += 1
    f.readDone()
    expect(sent).toHaveLength(3)
    clock += 1
    f.readDone()
    expect(sent).toHaveLength(4)
    f.close()
  })

  it('sends a held batch at the backstop (2 ms, the hold itself) when no read comes', () => {
    const { f, sent } = highRate()
    f.forward('w2', msg, [], true, null)
    vi.advanceTimersByTime(1)
    expect(sent).toHaveLength(3)
    vi.advanceTimersByTime(1)
    expect(sent).toHaveLength(4)
    f.close()
  })
})

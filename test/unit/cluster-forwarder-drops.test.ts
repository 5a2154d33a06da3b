// The forwarder's overload path: a link whose HTTP/2 window is full stops taking batches, the
// queue fills to its bound, and what does not fit is dropped and counted, QoS 1/2 failing at
// once for its publisher; a peer without a link drops the same way. Real Forwarder and metrics,
// a link double that reports a full window.

import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { Forwarder } from '../../src/cluster/forwarder.js'
import { FabricMetrics } from '../../src/cluster/metrics.js'
import type { Link } from '../../src/cluster/peer-link.js'
import { createLogger } from '../../src/log.js'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import type { Settle } from '../../worker/commit.js'

const msg = (qos: 0 | 1): BrokerMessage => ({ topic: 't', payload: Buffer.from('x'), qos, retain: false, origin: 'w1', publisherId: 'c' })

function blockedForwarder() {
  const registry = new Registry()
  const gauges = { epoch: () => 1, peers: () => [], localRoutes: () => 0, retained: () => 0 }
  const f = new Forwarder({ maxQueued: 3, maxQueuedBytes: 1 << 20, maxBatch: 1, maxBatchBytes: 1 << 20, metrics: new FabricMetrics(registry, gauges), log: createLogger({ name: 'test' }) })
  let batches = 0
  // every write reports a full window, and 'drain' never comes
  const link = { peerId: 'w2', send: () => (batches++, false), onDrain: () => undefined } as unknown as Link
  f.attach(link, 4)
  const drops = async (reason: string): Promise<number> => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'ringmq_forward_drops_total')
    return m?.values.find((v) => v.labels.peer === 'w2' && v.labels.reason === reason)?.value ?? 0
  }
  return { f, drops, sent: () => batches }
}

function recorder(): Settle & { outcome: Array<Error | null> } {
  const outcome: Array<Error | null> = []
  return { outcome, settle: (err) => void outcome.push(err) }
}

describe('forwarder overload', () => {
  it('drops what does not fit in the queue, counts it, and fails a QoS 1 forward within the call', async () => {
    const { f, drops, sent } = blockedForwarder()
    // the first message goes out as a batch of one and blocks the link; three more fill the queue
    for (let i = 0; i < 4; i++) f.forward('w2', msg(0), [], true, null)
    expect(sent()).toBe(1)
    expect(f.queued('w2')).toBe(3)
    for (let i = 0; i < 5; i++) f.forward('w2', msg(0), [], true, null)
    const q1 = recorder()
    f.forward('w2', msg(1), [], true, q1)
    expect(q1.outcome).toHaveLength(1)
    expect(q1.outcome[0]).toMatchObject({ code: 'ERR_FORWARD_BUFFER_FULL' })
    expect(await drops('buffer_full')).toBe(6)
    expect(f.queued('w2')).toBe(3)
    f.close()
  })

  it('drops for a peer without a link (peer_down), and fails what waited for an ack when the link goes', async () => {
    const { f, drops } = blockedForwarder()
    const q1 = recorder()
    f.forward('w9', msg(0), [], true, null)
    f.forward('w9', msg(1), [], true, q1)
    expect(q1.outcome[0]).toMatchObject({ code: 'ERR_PEER_DOWN' })
    // w9 is not w2: its drops are counted under its own label
    expect(await drops('peer_down')).toBe(0)
    const waiting = recorder()
    f.forward('w2', msg(1), [], true, waiting)
    expect(waiting.outcome).toHaveLength(0)
    f.close()
    expect(waiting.outcome[0]).toMatchObject({ code: 'ERR_PEER_DOWN' })
    expect(await drops('link_lost')).toBe(1)
  })
})

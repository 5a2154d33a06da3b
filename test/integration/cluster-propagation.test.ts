// Measures subscription (route) propagation time between in-process fabrics over real gRPC:
// from routeAdded() on w1 to remoteInterest() on w2 and w3 showing it. Figures are logged
// (`ROUTE_PROPAGATION p50=… p99=…`), not asserted: the assertion is that every route arrives.
// Run: npx vitest run test/integration/cluster-propagation.test.ts

import { afterAll, expect, it } from 'vitest'
import { startCluster, type Node } from './cluster-harness.js'

let nodes: Node[] = []
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.fabric.close()))
})

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

it('propagates 300 subscriptions to every peer and reports p50/p99', async () => {
  nodes = (await startCluster(3)).nodes
  const [w1, w2, w3] = nodes as [Node, Node, Node]
  const samples: number[] = []
  for (let i = 0; i < 300; i++) {
    const filter = `prop/${i}/+`
    const topic = `prop/${i}/x`
    const t0 = performance.now()
    w1.fabric.fabric.routeAdded({ filter, group: null })
    const seen = () => w2.fabric.fabric.remoteInterest(topic).length === 1 && w3.fabric.fabric.remoteInterest(topic).length === 1
    const deadline = Date.now() + 10_000
    while (!seen()) {
      if (Date.now() > deadline) throw new Error(`route ${filter} did not propagate`)
      await new Promise((r) => setImmediate(r))
    }
    samples.push(performance.now() - t0)
  }
  samples.sort((a, b) => a - b)
  const line = `ROUTE_PROPAGATION n=${samples.length} p50=${quantile(samples, 0.5).toFixed(2)}ms p99=${quantile(samples, 0.99).toFixed(2)}ms max=${samples[samples.length - 1]!.toFixed(2)}ms`
  console.log(line)
  expect(samples).toHaveLength(300)
  expect(w2.fabric.status().peers.find((p) => p.id === 'w1')!.routes).toBe(300)
})

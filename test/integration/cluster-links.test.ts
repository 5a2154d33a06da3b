// Peer link rules on the wire: Hello first, duplicate links removed by the lower-ID rule.

import * as grpc from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeMessage } from '../../src/cluster/message-codec.js'
import { WIRE_PROTOCOL } from '../../src/cluster/peer-link.js'
import { ringmqGrpc } from '../../src/cluster/proto.js'
import type { PbPeerMessage } from '../../src/cluster/proto-types.js'
import { HEARTBEAT_MS, MISSED_BEATS, forwarded, startCluster, waitFor, type Node } from './cluster-harness.js'

let nodes: Node[] = []
const clients: grpc.Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await Promise.all(nodes.map((n) => n.fabric.close()))
  nodes = []
})

/** A raw Peer.Link call to `node` saying Hello as `as`; records what comes back. */
function rawLink(node: Node, as: string, epoch = 1) {
  const client = new (ringmqGrpc().Peer)(`127.0.0.1:${node.port}`, grpc.credentials.createInsecure())
  clients.push(client)
  const call = (client as unknown as { Link(): grpc.ClientDuplexStream<PbPeerMessage, PbPeerMessage> }).Link()
  const received: PbPeerMessage[] = []
  let ended = false
  call.on('data', (m: PbPeerMessage) => received.push(m))
  call.on('error', () => (ended = true))
  call.on('end', () => (ended = true))
  call.write({ body: 'hello', hello: { worker_id: as, epoch, route_digest: '', retained_digest: '', protocol: 1 } })
  return { call, received, isEnded: () => ended }
}

describe('peer links', () => {
  it('keeps the link dialed by the lower ID when a second one arrives from the higher ID', async () => {
    nodes = (await startCluster(2)).nodes
    const [w1, w2] = nodes as [Node, Node]
    const raw = rawLink(w1, 'w2')
    await waitFor(() => raw.isEnded(), 'duplicate from the higher ID closed')
    expect(raw.received.map((m) => m.body)).toEqual(['hello'])
    expect(w1.fabric.status().peers[0]).toMatchObject({ id: 'w2', up: true, dialer: 'w1' })
    w2.fabric.fabric.routeAdded({ filter: 'still/works', group: null })
    await waitFor(() => w1.fabric.fabric.remoteInterest('still/works').length === 1, 'route over the original link')
  })

  it('a redial by the same side replaces the old link (the newer one wins)', async () => {
    nodes = (await startCluster(2)).nodes
    const [, w2] = nodes as [Node, Node]
    // w1 is the dialer of the real link; a "redial" as w1 supersedes it on w2
    const raw = rawLink(w2, 'w1')
    await waitFor(() => raw.received.some((m) => m.body === 'route_snapshot'), 'raw link got the link-start snapshot')
    expect(raw.received[0]!.body).toBe('hello')
    // the real w1 notices its link was closed, redials, and that newer link replaces the raw one
    await waitFor(() => raw.isEnded(), 'raw link superseded by the real w1 redialing')
    await waitFor(() => nodes.every((n) => n.fabric.status().peers[0]!.up), 'real link back')
  })

  it('marks a peer down at once when it closes its links, on both the dialing and accepting side', async () => {
    nodes = (await startCluster(3)).nodes
    const [w1, w2, w3] = nodes as [Node, Node, Node]
    // w2 dialed w3 and accepted w1's link: closing it cancels one and ends the other
    await w2.fabric.close()
    await waitFor(() => !w1.fabric.isAlive('w2') && !w3.fabric.isAlive('w2'), 'w2 down on w1 and w3')
    const reasons = (n: Node) => n.logs.filter((l) => l.msg === 'peer link down' && l.peer === 'w2').map((l) => l.reason)
    expect(reasons(w1)).not.toContain(`${MISSED_BEATS} heartbeats missed`)
    expect(reasons(w3)).not.toContain(`${MISSED_BEATS} heartbeats missed`)
    expect(reasons(w3)).toHaveLength(1)
    expect(reasons(w1)).toHaveLength(1)
  })

  it('does not declare peers down because this process itself stalled', async () => {
    nodes = (await startCluster(2)).nodes
    const [w1, w2] = nodes as [Node, Node]
    // block the event loop (all in-process nodes) for longer than the missed-beat limit
    const until = Date.now() + HEARTBEAT_MS * MISSED_BEATS * 2
    while (Date.now() < until) {
      /* synchronous stall, as a long GC pause would */
    }
    w1.fabric.fabric.routeAdded({ filter: 'after/stall', group: null })
    await waitFor(() => w2.fabric.fabric.remoteInterest('after/stall').length === 1, 'route after the stall')
    expect(nodes.flatMap((n) => n.logs.filter((l) => l.msg === 'peer link down'))).toEqual([])
  })

  it('refuses a stream that does not start with Hello', async () => {
    nodes = (await startCluster(2)).nodes
    const [w1] = nodes as [Node]
    const client = new (ringmqGrpc().Peer)(`127.0.0.1:${w1.port}`, grpc.credentials.createInsecure())
    clients.push(client)
    const call = (client as unknown as { Link(): grpc.ClientDuplexStream<PbPeerMessage, PbPeerMessage> }).Link()
    let ended = false
    call.on('error', () => (ended = true))
    call.on('end', () => (ended = true))
    call.on('data', () => {})
    call.write({ body: 'heartbeat', heartbeat: { epoch: 9, route_digest: '', retained_digest: '', time: 0, route_seq: 0 } })
    await waitFor(() => ended, 'stream without Hello closed')
    expect(w1.fabric.ring().epoch).toBe(1)
  })
})

describe('wire revisions', () => {
  it('a revision-1 peer is sent and may send the per-message forms (messages, msg_ids)', async () => {
    nodes = (await startCluster(2)).nodes
    const [w1] = nodes as [Node]
    // an older worker (not in the ring: links are accepted from any worker ID)
    const old = rawLink(w1, 'w9')
    await waitFor(() => old.received.some((m) => m.body === 'hello'), 'hello from w1')
    expect(old.received.find((m) => m.body === 'hello')!.hello.protocol).toBe(WIRE_PROTOCOL)
    old.call.write({ body: 'route_snapshot', route_snapshot: { routes: [{ filter: 'old/#', group: '', count: 1 }], seq: 1, more: false } } as PbPeerMessage)
    await waitFor(() => w1.fabric.fabric.remoteInterest('old/t').length === 1, 'w9 route at w1')

    // w1 -> w9: QoS 1 in the per-message form; w9's per-message ack resolves the forward
    const msg = { topic: 'old/t', payload: Buffer.from('x'), qos: 1 as const, retain: false, origin: 'w1', publisherId: 'c1' }
    let settled = false
    const done = forwarded(w1.fabric.fabric, 'w9', msg, [], true)!.then(() => (settled = true))
    await waitFor(() => old.received.some((m) => m.body === 'publish_batch'), 'batch at w9')
    const batch = old.received.find((m) => m.body === 'publish_batch')!.publish_batch
    expect(batch.packed.length).toBe(0)
    expect(batch.messages.map((m) => [m.topic, m.payload.toString(), m.qos])).toEqual([['old/t', 'x', 1]])
    expect(settled).toBe(false)
    old.call.write({ body: 'publish_ack', publish_ack: { msg_ids: [batch.messages[0]!.msg_id] } } as PbPeerMessage)
    await done

    // w9 -> w1 in the per-message form: delivered, and acknowledged with msg_ids, not ranges
    old.call.write({ body: 'publish_batch', publish_batch: { batch_id: 1, messages: [encodeMessage({ ...msg, origin: 'w9' }, 42, [], true)] } } as PbPeerMessage)
    await waitFor(() => old.received.some((m) => m.body === 'publish_ack'), 'ack at w9')
    const ack = old.received.find((m) => m.body === 'publish_ack')!.publish_ack
    expect(ack.msg_ids).toEqual([42])
    expect(ack.ok_ranges.length).toBe(0)
    expect(w1.broker.delivered.map((d) => d.msg.origin)).toEqual(['w9'])
  })
})

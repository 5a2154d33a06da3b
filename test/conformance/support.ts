// Shared vocabulary of the case files: Paho's topic sets under a per-case namespace, the
// target-dependent `it` variants, and assertions on how a broker ends a connection.

import { it, expect } from 'vitest'
import { RawClient, type AnyPacket } from './raw-client.js'
import { caps, targetKind, type Target, type TargetCaps } from './target.js'

export const onRingmq = targetKind() === 'ringmq'

/**
 * The Paho interoperability topic sets (client_test.py / client_test5.py), prefixed with a
 * namespace unique to one case so cases can run concurrently on one broker.
 */
export function pahoTopics(ns: string): { topics: string[]; wild: string[] } {
  const topics = ['TopicA', 'TopicA/B', 'Topic/C', 'TopicA/C', '/TopicA'].map((t) => `${ns}/${t}`)
  const wild = ['TopicA/+', '+/C', '#', '/#', '/+', '+/+', 'TopicA/#'].map((t) => `${ns}/${t}`)
  return { topics, wild }
}

/**
 * `it` for a case ringmq is known to fail although the reference broker passes it: on ringmq
 * the case is expected to fail (vitest `it.fails`), so the suite stays green and the day the
 * worker is fixed the case turns red, asking for this marker to be removed. Every use carries a
 * `// ringmq gap:` comment and is listed in docs/conformance.md.
 */
export function ringmqGap(_reason: string): typeof it {
  return onRingmq ? (it.fails as unknown as typeof it) : it
}

/** `it`, skipped on a target without the capability (documented per capability). */
export function itWith(cap: keyof TargetCaps): typeof it {
  return it.skipIf(!caps()[cap]) as typeof it
}

/**
 * `it` for a spec rule the reference broker (Mosquitto 2.0.11) does not follow; runs on ringmq
 * only. The case cites the rule; docs/conformance.md lists these.
 */
export function itSpecOnly(_mosquittoDeviation: string): typeof it {
  return it.skipIf(!onRingmq) as typeof it
}

export interface CloseExpectation {
  /** 5.0: reason codes a DISCONNECT sent before the close may carry */
  reasons?: number[]
  /** the DISCONNECT is mandatory (else optional: the spec lets a server just close) */
  requireDisconnect?: boolean
}

/**
 * Awaits the broker closing the connection. Returns the DISCONNECT it sent first, if any,
 * after checking its reason code. No CONNACK/SUBACK success may come in between.
 */
export async function expectClosed(raw: RawClient, exp: CloseExpectation = {}, timeoutMs = 10000): Promise<AnyPacket | undefined> {
  const before = await raw.closedAfter(timeoutMs)
  const disconnect = before.find((p) => p.cmd === 'disconnect')
  if (exp.requireDisconnect) expect(disconnect, `DISCONNECT before close; got ${before.map((p) => p.cmd)}`).toBeDefined()
  if (disconnect && exp.reasons) expect(exp.reasons).toContain(disconnect.reasonCode)
  return disconnect
}

/** A raw CONNECT for `clientId` with the case's protocol version. */
export function rawConnect(target: Target, version: 3 | 4 | 5, connect: Partial<AnyPacket> & { clientId: string }): ReturnType<typeof RawClient.connect> {
  return RawClient.connect(
    target,
    version === 3 ? { protocolId: 'MQIsdp', ...connect } : connect,
    { protocolVersion: version },
  )
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

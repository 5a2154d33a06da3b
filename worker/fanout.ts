// Fan-out of one message: local trie match, remote interest from the fabric, one member per
// shared group chosen cluster-wide (round-robin), then local sessions write and each remote
// worker gets one forward call.
//
//   match(topic) ─┬─ normal subscriptions ─> one copy per session (highest QoS, every subscription ID)
//                 └─ shared groups ──┐
//   remoteInterest(topic) ───────────┴─> pick one member per group (local or remote worker)
//                                        └─> fabric.forward(peer, msg, groups, normal) once per peer

import type { BrokerMessage, QoS } from '../src/mqtt/message.js'
import type { GroupKey, RemoteInterest } from './fabric.js'
import type { Broker } from './broker.js'
import type { Commit } from './commit.js'
import type { EncodeCache } from './encode.js'
import type { Session } from './session.js'
import type { SharedGroup, Subscription, TrieEntry } from './subscription.js'

let mark = 0

/**
 * Delivers `msg` to every local and remote subscriber. The store writes and forwards a QoS 1/2
 * acknowledgement waits for go to `commit` (null on the QoS 0 path, which never waits).
 */
export function fanout(b: Broker, msg: BrokerMessage, commit: Commit | null): void {
  const enc = b.enc
  enc.reset(msg)
  const local = b.trie.match(msg.topic)
  const remote = b.fabric.remoteInterest(msg.topic)
  if (remote.length === 0) {
    if (local.length === 0) {
      b.stats.drop('no_subscribers')
      return
    }
    deliverLocal(b, msg, local, true, null, commit, enc)
    return
  }
  if (!anyGroup(local, remote)) {
    // no shared subscription anywhere: every remote worker with interest gets one copy
    deliverLocal(b, msg, local, true, null, commit, enc)
    for (const ri of remote) if (ri.normal) forward(b, ri.workerId, msg, NO_GROUPS, commit)
    return
  }
  const chosenLocal = chooseGroups(b, local, remote)
  deliverLocal(b, msg, local, true, chosenLocal.local, commit, enc)
  for (const ri of remote) {
    const groups = chosenLocal.remote.get(ri.workerId)
    if (!ri.normal && groups === undefined) continue
    forward(b, ri.workerId, msg, groups ?? NO_GROUPS, commit, ri.normal)
  }
}

const NO_GROUPS: GroupKey[] = []

function forward(b: Broker, workerId: string, msg: BrokerMessage, groups: GroupKey[], commit: Commit | null, normal = true): void {
  b.fabric.forward(workerId, msg, groups, normal, msg.qos === 0 ? null : commit !== null ? commit.hold() : b.forwardFailures, b.enc.plain(msg))
}

/** Whether a shared group matches locally or at any remote worker (the common case is none). */
function anyGroup(local: readonly TrieEntry[], remote: readonly RemoteInterest[]): boolean {
  for (let i = 0; i < remote.length; i++) if (remote[i]!.groups.size > 0) return true
  for (let i = 0; i < local.length; i++) if (local[i]!.kind === 'group') return true
  return false
}

/**
 * Picks, for each shared group matching the topic anywhere in the cluster, whether a local
 * member or which remote worker gets the message. Round-robin over all members: a worker with
 * more members gets proportionally more messages.
 */
function chooseGroups(b: Broker, local: readonly TrieEntry[], remote: readonly RemoteInterest[]): { local: Set<GroupKey>; remote: Map<string, GroupKey[]> } {
  const counts = new Map<GroupKey, number>()
  for (const e of local) if (e.kind === 'group' && e.members.length > 0) counts.set(e.key, e.members.length)
  const keys = new Set<GroupKey>(counts.keys())
  for (const ri of remote) for (const k of ri.groups.keys()) keys.add(k)
  const chosen = { local: new Set<GroupKey>(), remote: new Map<string, GroupKey[]>() }
  for (const key of keys) {
    const localCount = counts.get(key) ?? 0
    let total = localCount
    for (const ri of remote) total += ri.groups.get(key) ?? 0
    if (total === 0) continue
    const turn = b.nextGroupTurn(key) % total
    if (turn < localCount) {
      chosen.local.add(key)
      continue
    }
    let acc = localCount
    for (const ri of remote) {
      acc += ri.groups.get(key) ?? 0
      if (turn < acc) {
        const list = chosen.remote.get(ri.workerId)
        if (list) list.push(key)
        else chosen.remote.set(ri.workerId, [key])
        break
      }
    }
  }
  return chosen
}

/**
 * Local delivery. `normal`: deliver to non-shared subscriptions. `groups`: the shared groups
 * to serve here (null = every matching local group).
 */
export function deliverLocal(
  b: Broker, msg: BrokerMessage, entries: readonly TrieEntry[], normal: boolean, groups: ReadonlySet<GroupKey> | null,
  commit: Commit | null, enc: EncodeCache | null,
): void {
  // fast path: exactly one plain subscription (the common 1:1 case)
  if (entries.length === 1 && entries[0]!.kind === 'sub') {
    if (!normal) return
    const sub = entries[0]
    if (sub.noLocal && sub.session.clientId === msg.publisherId) return
    push(commit, sub.session.deliver(msg, minQos(msg.qos, sub.qos), sub.retainAsPublished && msg.retain, sub.subscriptionId === undefined ? undefined : [sub.subscriptionId], enc))
    return
  }
  const m = ++mark
  let touched: Session[] | null = null
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    if (e.kind === 'group') {
      if (groups !== null && !groups.has(e.key)) continue
      const member = pickMember(e)
      if (member === null) continue
      push(commit, member.session.deliver(msg, minQos(msg.qos, member.qos), member.retainAsPublished && msg.retain, member.subscriptionId === undefined ? undefined : [member.subscriptionId], enc))
      continue
    }
    if (!normal) continue
    // no-local: never back to the publishing client [MQTT-3.8.3-3]
    if (e.noLocal && e.session.clientId === msg.publisherId) continue
    const s = e.session
    const qos = minQos(msg.qos, e.qos)
    if (s.fanMark !== m) {
      // overlapping subscriptions: one copy with the highest QoS and every identifier [MQTT-3.3.4-2, MQTT-3.3.4-3]
      s.fanMark = m
      s.fanQos = qos
      s.fanRetain = e.retainAsPublished && msg.retain
      s.fanSubIds = e.subscriptionId === undefined ? undefined : [e.subscriptionId]
      ;(touched ??= []).push(s)
    } else {
      if (qos > s.fanQos) s.fanQos = qos
      if (e.retainAsPublished && msg.retain) s.fanRetain = true
      if (e.subscriptionId !== undefined) (s.fanSubIds ??= []).push(e.subscriptionId)
    }
  }
  if (touched === null) return
  for (let i = 0; i < touched.length; i++) {
    const s = touched[i]!
    push(commit, s.deliver(msg, s.fanQos, s.fanRetain, s.fanSubIds, enc))
  }
}

/** Round-robin over the group's members, preferring members that are online. */
function pickMember(g: SharedGroup): Subscription | null {
  const n = g.members.length
  if (n === 0) return null
  for (let i = 0; i < n; i++) {
    const idx = (g.next + i) % n
    const m = g.members[idx]!
    if (m.session.conn !== null) {
      g.next = idx + 1
      return m
    }
  }
  const m = g.members[g.next % n]!
  g.next = (g.next % n) + 1
  return m
}

function minQos(a: QoS, b: QoS): QoS {
  return a < b ? a : b
}

function push(commit: Commit | null, p: Promise<unknown> | undefined): void {
  if (p !== undefined && commit !== null) commit.add(p)
}

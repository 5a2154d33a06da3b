// The seam between one worker's broker and the cluster. A standalone worker uses
// `standaloneFabric` (no peers); the gRPC fabric (src/cluster) implements the same interface.
//
// Publish path across workers:
//   fanout matches local trie            -> local sessions
//   fanout asks fabric.remoteInterest()  -> which peers have normal subscribers / shared groups
//   fanout picks ONE member worker per shared group cluster-wide (local or remote)
//   fanout calls fabric.forward(peer, msg, groups, normal, done, frame) once per peer
//   the peer's broker calls BrokerSurface.deliverForwarded(...) for its local sessions
//   QoS 1/2: the peer's broker settles its ack, the ack settles `done` (worker/commit.ts)

import type { Buffer } from 'node:buffer'
import type { BrokerMessage } from '../src/mqtt/message.js'
import type { Settle } from './commit.js'

/**
 * The last-writer-wins stamp of a retained set or clear (hybrid logical clock and writer
 * worker), stored with the retained record so a restart keeps last-writer-wins right.
 */
export interface RetainedStamp {
  wall: number
  logical: number
  node: string
}

/** A shared subscription group key: `${group}/${filter}`, exactly as after `$share/`. */
export type GroupKey = string

export interface RemoteInterest {
  workerId: string
  /** the peer has at least one non-shared subscription matching the topic */
  normal: boolean
  /** shared groups matching the topic with members on that peer, and their member counts */
  groups: Map<GroupKey, number>
}

export interface RouteChange {
  /** topic filter without any `$share/group/` prefix */
  filter: string
  /** shared group name, or null for a normal subscription */
  group: string | null
  /**
   * Local reference count (sessions subscribed; for a shared group its member count, which
   * peers use to weigh the group's round-robin). Absent = 1.
   */
  count?: number
}

export interface Fabric {
  /**
   * The first local subscription (online or offline persistent session) to this route
   * appeared, or the route's reference count changed (`route.count`, never 0). Synchronous
   * and cheap: the fabric coalesces changes per event-loop turn.
   */
  routeAdded(route: RouteChange): void
  /** The last local subscription to this route went away. */
  routeRemoved(route: RouteChange): void
  /** Peers (never this worker) with interest matching `topic`. Synchronous: a trie lookup. */
  remoteInterest(topic: string): readonly RemoteInterest[]
  /**
   * Sends `msg` to one peer (batched per link). QoS 0 passes `done` null. For QoS 1/2,
   * `done.settle(null)` once the peer has delivered or durably queued it, `settle(err)` if the
   * peer is down (possibly within this call), the link buffer is full or the peer failed.
   * `frame`: the plain QoS 0 PUBLISH of `msg` when the broker has it (src/mqtt/plain-frame.ts),
   * so the peer can hand it to its subscribers without encoding it again; read within the call.
   */
  forward(workerId: string, msg: BrokerMessage, groups: GroupKey[], normal: boolean, done: Settle | null, frame: Buffer | null): void
  /**
   * A retained message was set (msg) or cleared (null) by a local client. Returns the stamp
   * the cluster gave the write (the broker stores it; a clear is kept as a tombstone), or
   * undefined when there is no cluster (a clear then simply deletes).
   */
  retainedChanged(topic: string, msg: BrokerMessage | null): RetainedStamp | undefined
  /** Before CONNACK: end any live session of this client ID on other workers. */
  claimSession(clientId: string): Promise<void>
  /**
   * The broker finished handling a chunk a client sent: forwards held for more messages at a
   * high rate that waited long enough go now (a read is a wake-up the process has anyway).
   */
  readDone(): void
  close(): Promise<void>
}

/** What the fabric may call on the local broker. */
export interface BrokerSurface {
  readonly workerId: string
  /**
   * Deliver a message forwarded by a peer: to normal subscribers if `normal`, and to one member
   * of each listed group. QoS 0 (never acknowledged to the sender) is delivered within the call
   * with `done` null. For QoS 1/2, `done.settle(null)` once every delivery was made or durably
   * queued: within the call when nothing had to be waited for (clean sessions: sent or queued in
   * memory), so the fabric can acknowledge the sender at once; `settle(err)` if one failed. A
   * throw is a failed delivery (and `done` is not called). `frame`: the plain QoS 0 PUBLISH of
   * `msg` the sender carried (`msg.payload` is a view of it), or null.
   */
  deliverForwarded(msg: BrokerMessage, groups: GroupKey[], normal: boolean, done: Settle | null, frame: Buffer | null): void
  /**
   * Deliver a forwarded plain QoS 0 PUBLISH (`frame`, in the 5.0 form if `v5`) that names no
   * shared group, from its bytes, as deliverForwarded would. Returns false, having delivered
   * nothing, when that needs the message (the fabric then builds it and calls deliverForwarded).
   */
  deliverFrame(topic: string, publisherId: string, frame: Buffer, v5: boolean, normal: boolean): boolean
  /**
   * Apply a retained set/clear that won last-writer-wins, stored with its stamp (a clear with
   * a stamp is kept as a tombstone). A clear without a stamp forgets the topic entirely (an
   * expired tombstone).
   */
  applyRetained(topic: string, msg: BrokerMessage | null, stamp?: RetainedStamp): void
  /** Every retained message (and tombstone: msg null) held locally, with its stored stamp, for seeding at start. */
  listRetained(): Iterable<{ topic: string; msg: BrokerMessage | null; stamp?: RetainedStamp }>
  /**
   * End the session of `clientId` here, if any (take-over from another worker; 5.0 reason
   * 0x8E to a live connection). Its will is published before the promise resolves.
   */
  endSession(clientId: string, reasonCode: number): Promise<void>
  /** The local route set with reference counts, for link-start snapshots. */
  routeSnapshot(): Array<RouteChange & { count: number }>
}

export const standaloneFabric: Fabric = {
  routeAdded() {},
  routeRemoved() {},
  remoteInterest: () => [],
  forward() {},
  retainedChanged: () => undefined,
  claimSession: () => Promise.resolve(),
  readDone() {},
  close: () => Promise.resolve(),
}

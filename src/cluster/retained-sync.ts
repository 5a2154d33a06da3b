// Retained replication over peer links (the link side of retained-registers.ts).
//
//   local set/clear  -> register stamped with our HLC -> RetainedSet to every up peer
//   RetainedSet in   -> merge; if it wins, broker.applyRetained(topic, msg | null, stamp)
//   persistence      -> the broker stores every winning write with its stamp (a clear as a
//                       tombstone record) and hands them back at start (`seedFromBroker`)
//   catch-up         -> when a peer's retained digest (Hello at link start, then heartbeats)
//                       differs from ours, send it our stamps (RetainedDigestRequest, no
//                       payloads); it answers with every register it holds that is newer or
//                       that we lack (RetainedCatchUp). Both sides do this, so both converge.
// A heartbeat mismatch must be seen twice in a row before asking: a RetainedSet may be in
// flight in the other direction. A peer that was down simply misses sets; catch-up repairs.

import type { BrokerSurface, RetainedStamp } from '../../worker/fabric.js'
import type { Logger } from '../log.js'
import type { BrokerMessage } from '../mqtt/message.js'
import { CHUNK_BYTES } from './limits.js'
import { decodeMessage, encodeMessage } from './message-codec.js'
import type { FabricMetrics } from './metrics.js'
import type { Link } from './peer-link.js'
import type { PbRetainedCatchUp, PbRetainedDigestRequest, PbRetainedSet } from './proto-types.js'
import type { RetainedRegisters, Register, Stamp } from './retained-registers.js'

export class RetainedSync {
  readonly registers: RetainedRegisters
  #mismatches = new Map<string, number>()
  #asked = new Map<string, number>() // peer -> heartbeats since the request
  readonly #broker: BrokerSurface
  readonly #links: () => Link[]
  readonly #metrics: FabricMetrics
  readonly #log: Logger

  constructor(opts: { registers: RetainedRegisters; broker: BrokerSurface; links: () => Link[]; metrics: FabricMetrics; log: Logger }) {
    this.registers = opts.registers
    this.#broker = opts.broker
    this.#links = opts.links
    this.#metrics = opts.metrics
    this.#log = opts.log
  }

  /** Seeds the registers from the broker's stored messages and tombstones with their stamps. */
  seedFromBroker(): void {
    for (const { topic, msg, stamp } of this.#broker.listRetained()) {
      this.registers.seed(topic, msg, stamp && { hlc: { wall: stamp.wall, logical: stamp.logical }, writer: stamp.node })
    }
  }

  /** A local set/clear: stamped, sent to every peer; returns the stamp for the broker to store. */
  localChange(topic: string, msg: BrokerMessage | null): RetainedStamp {
    const reg = this.registers.local(topic, msg)
    const set = toPb(reg)
    for (const link of this.#links()) link.send({ body: 'retained_set', retained_set: set })
    this.#metrics.retainedSync.inc({ event: 'sent' })
    return toStamp(reg.stamp)
  }

  /** Drops expired tombstones here and in the broker's store. */
  expireTombstones(): void {
    this.registers.expireTombstones((topic) => this.#broker.applyRetained(topic, null))
  }

  onSet(s: PbRetainedSet): void {
    const stamp: Stamp = { hlc: s.hlc ?? { wall: 0, logical: 0 }, writer: s.writer }
    const msg = s.message ? decodeMessage(s.message) : null
    if (this.registers.merge(s.topic, stamp, msg)) {
      this.#metrics.retainedSync.inc({ event: 'applied' })
      this.#broker.applyRetained(s.topic, msg, toStamp(stamp))
    } else {
      this.#metrics.retainedSync.inc({ event: 'ignored' })
    }
  }

  /** Compares a peer's retained digest; `immediate` at link start (Hello). */
  compare(link: Link, digest: string, immediate: boolean): void {
    const asked = this.#asked.get(link.peerId)
    if (asked !== undefined && !immediate) {
      // wait a few beats for the answer before asking again
      if (asked < 3) {
        this.#asked.set(link.peerId, asked + 1)
        return
      }
      this.#asked.delete(link.peerId)
    }
    if (digest === this.registers.digest) {
      this.#mismatches.delete(link.peerId)
      return
    }
    const n = (this.#mismatches.get(link.peerId) ?? 0) + 1
    this.#mismatches.set(link.peerId, n)
    if (!immediate && n < 2) return
    this.#mismatches.delete(link.peerId)
    this.#asked.set(link.peerId, 0)
    const stamps = [...this.registers.all()].map((r) => ({ topic: r.topic, hlc: r.stamp.hlc, writer: r.stamp.writer, tombstone: r.msg === null }))
    this.#metrics.retainedSync.inc({ event: 'catchup_requested' })
    this.#log.debug('retained catch-up requested', { peer: link.peerId, entries: stamps.length })
    link.send({ body: 'retained_digest_request', retained_digest_request: { stamps } })
  }

  onDigestRequest(link: Link, req: PbRetainedDigestRequest): void {
    const theirs = new Map<string, Stamp>()
    for (const s of req.stamps) theirs.set(s.topic, { hlc: s.hlc ?? { wall: 0, logical: 0 }, writer: s.writer })
    this.#metrics.retainedSync.inc({ event: 'catchup_sent' })
    let sets: PbRetainedSet[] = []
    let bytes = 0
    for (const reg of this.registers.newerThan(theirs)) {
      sets.push(toPb(reg))
      bytes += reg.topic.length + (reg.msg?.payload.length ?? 0) + 64
      if (bytes >= CHUNK_BYTES) {
        link.send({ body: 'retained_catch_up', retained_catch_up: { sets, more: true } })
        sets = []
        bytes = 0
      }
    }
    link.send({ body: 'retained_catch_up', retained_catch_up: { sets, more: false } })
  }

  onCatchUp(link: Link, c: PbRetainedCatchUp): void {
    if (!c.more) this.#asked.delete(link.peerId)
    for (const s of c.sets) this.onSet(s)
  }

  linkDown(peerId: string): void {
    this.#asked.delete(peerId)
    this.#mismatches.delete(peerId)
  }
}

function toStamp(s: Stamp): RetainedStamp {
  return { wall: s.hlc.wall, logical: s.hlc.logical, node: s.writer }
}

function toPb(reg: Register): PbRetainedSet {
  return {
    topic: reg.topic,
    message: reg.msg ? (encodeMessage(reg.msg, 0, [], false) as PbRetainedSet['message']) : null,
    hlc: reg.stamp.hlc,
    writer: reg.stamp.writer,
  }
}

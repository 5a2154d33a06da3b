// RingSpec <-> proto RingSpec. Validation of the decoded spec is the ring module's job.

import type { RingSpec, WorkerState } from '../ring/spec.js'
import type { PbRingSpec } from './proto-types.js'

export function encodeRing(spec: RingSpec): PbRingSpec {
  return {
    epoch: spec.epoch,
    replicas: spec.replicas,
    vnodes: spec.vnodes,
    workers: spec.workers.map((w) => ({ id: w.id, mqtt: w.mqtt, peer: w.peer, weight: w.weight, state: w.state })),
  }
}

export function decodeRing(pb: PbRingSpec): RingSpec {
  return {
    epoch: pb.epoch,
    replicas: pb.replicas,
    vnodes: pb.vnodes,
    workers: pb.workers.map((w) => ({ id: w.id, mqtt: w.mqtt, peer: w.peer, weight: w.weight, state: w.state as WorkerState })),
  }
}

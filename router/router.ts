// One router process: the edge listener, the membership it routes by, its metrics, and (when
// --admin is given) the Admin gRPC service, which is plugged in through `AdminPlug` so that the
// routing path never depends on gRPC.

import fs from 'node:fs'
import type { HostPort } from '../src/config/flags.js'
import type { Logger } from '../src/log.js'
import type { Registry } from 'prom-client'
import { formatRingSpec, type RingSpec } from '../src/ring/spec.js'
import { Edge, type EdgeOptions } from './edge.js'
import { Membership } from './membership.js'
import { RouterMetrics } from './metrics.js'

export interface RouterOptions extends EdgeOptions {
  id: string
  spec: RingSpec
  /** where the spec came from; a newer spec adopted over Admin is written back here */
  ringFile?: string
  probeIntervalMs: number
}

export interface RouterHandle {
  readonly id: string
  readonly mqtt: HostPort
  readonly membership: Membership
  readonly edge: Edge
  /** Compare-and-set: adopt `spec` if the current epoch is `expectedEpoch` and `spec.epoch` is higher. */
  applyRing(spec: RingSpec, expectedEpoch: number): { ok: boolean; epoch: number; error?: string }
  /** Adopts `spec` if its epoch is higher than the current one (a spec heard from a join node). */
  adoptRing(spec: RingSpec): boolean
  close(): Promise<void>
}

/** Something listening beside the router (the Admin service); started after the edge. */
export interface AdminPlug {
  address: HostPort
  close(): Promise<void>
}

export async function startRouter(opts: RouterOptions, registry: Registry, log: Logger): Promise<RouterHandle> {
  const membership = new Membership(opts.spec, log)
  let edge: Edge | undefined
  const metrics = new RouterMetrics(registry, {
    connections: () => edge?.connections ?? 0,
    bytes: () => edge?.bytes() ?? { toWorker: 0, toClient: 0 },
    workers: () => membership.liveness(),
    epoch: () => membership.placement.spec.epoch,
  })
  edge = new Edge(opts, membership, metrics)
  const mqtt = await edge.listen()
  membership.startProbes(opts.probeIntervalMs, opts.connectTimeoutMs)
  const e = edge
  const adopt = (spec: RingSpec): void => {
    membership.setSpec(spec)
    if (opts.ringFile) writeAtomically(opts.ringFile, formatRingSpec(spec))
    log.info('ring adopted', { epoch: spec.epoch, workers: spec.workers.length })
  }
  return {
    id: opts.id,
    mqtt,
    membership,
    edge: e,
    applyRing(spec, expectedEpoch) {
      const current = membership.placement.spec.epoch
      if (current !== expectedEpoch) return { ok: false, epoch: current, error: `epoch is ${current}, not ${expectedEpoch}` }
      if (spec.epoch <= current) return { ok: false, epoch: current, error: `new epoch ${spec.epoch} is not above ${current}` }
      adopt(spec)
      return { ok: true, epoch: spec.epoch }
    },
    adoptRing(spec) {
      if (spec.epoch <= membership.placement.spec.epoch) return false
      adopt(spec)
      return true
    },
    async close() {
      membership.stop()
      await e.close()
    },
  }
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}

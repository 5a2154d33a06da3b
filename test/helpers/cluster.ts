// A ring of three loopback workers (w1..w3, replicas 2) written to a ring file, for the
// integration tests that start real cluster processes.

import fs from 'node:fs'
import path from 'node:path'
import { Placement } from '../../src/ring/placement.js'
import { parseRingSpec, type RingSpec } from '../../src/ring/spec.js'
import { freePorts, tmpDir } from './process.js'

export interface TestRing {
  spec: RingSpec
  placement: Placement
  ringFile: string
  /** further free ports the caller asked for (e.g. a router's) */
  extraPorts: number[]
}

export async function writeThreeWorkerRing(prefix: string, extraPorts = 0): Promise<TestRing> {
  const ports = await freePorts(6 + extraPorts)
  const spec = parseRingSpec({
    epoch: 1,
    replicas: 2,
    workers: [1, 2, 3].map((i) => ({ id: `w${i}`, mqtt: `127.0.0.1:${ports[i - 1]}`, peer: `127.0.0.1:${ports[i + 2]}` })),
  })
  const ringFile = path.join(tmpDir(prefix), 'ring.json')
  fs.writeFileSync(ringFile, JSON.stringify(spec))
  return { spec, placement: new Placement(spec), ringFile, extraPorts: ports.slice(6) }
}

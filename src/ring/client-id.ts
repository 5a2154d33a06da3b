// Server-assigned client IDs that hash to the assigning worker, so that a 5.0 client that
// reconnects with its assigned ID through any router lands on the same worker again.

import { randomBytes } from 'node:crypto'
import { errRingInvalid } from '../errors.js'
import type { Placement } from './placement.js'

/** Expected tries are (total points / this worker's points); 10,000 fails only if it owns ~nothing. */
const MAX_ATTEMPTS = 10_000

/** A random ID ("ringmq-" + base36, at most 23 characters for 3.1 clients) whose first pref is `workerId`. */
export function assignClientId(placement: Placement, workerId: string): string {
  const w = placement.worker(workerId)
  if (!w || w.state !== 'active') {
    throw errRingInvalid(`worker "${workerId}" is not active in ring epoch ${placement.spec.epoch}; it owns no client IDs`)
  }
  const entropy = randomBytes(8 * 64)
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const slot = (attempt % 64) * 8
    if (slot === 0 && attempt > 0) randomBytes(8 * 64).copy(entropy)
    const id = 'ringmq-' + entropy.readBigUInt64LE(slot).toString(36)
    if (placement.prefs(id)[0]!.id === workerId) return id
  }
  throw errRingInvalid(`could not find a client ID owned by "${workerId}" in ${MAX_ATTEMPTS} tries`)
}

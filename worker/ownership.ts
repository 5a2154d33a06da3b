// Ring ownership for the broker: a worker serves a client only if it is in prefs(clientId)
// under its ring spec, and assigns client IDs whose first pref is itself.

import { assignClientId } from '../src/ring/client-id.js'
import { Placement } from '../src/ring/placement.js'
import type { RingSpec } from '../src/ring/spec.js'
import type { Ownership } from './broker.js'

export function ringOwnership(spec: RingSpec, workerId: string): Ownership {
  const placement = new Placement(spec)
  return {
    owns: (clientId) => placement.isPref(clientId, workerId),
    assignClientId: () => assignClientId(placement, workerId),
  }
}

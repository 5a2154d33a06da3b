// Session take-over across workers. Before worker B answers CONNACK it claims the client ID:
//
//   B --SessionClaim{client_id, claim_id}--> every OTHER worker in prefs(clientId) that is up
//   X: broker.endSession(clientId, 0x8E)  (DISCONNECT "session taken over"; the session ends on X,
//      so its will, or a pending delayed will, is published there before X answers)
//   B <--SessionClaimAck{claim_id}---------- X
//
// claim() resolves when every asked worker answered, or after `timeoutMs` (default 1 s), or
// at once when a link to an asked worker drops. It never rejects: a worker that is down or
// cut off cannot serve the client anyway (routers send no traffic to it, and a worker serves
// only its own prefs), and blocking CONNACK on it would make a partition an outage. The
// price, written down in docs/cluster.md: during a partition a client ID can be live on two
// sides for as long as the partition lasts.
// Workers outside prefs are not asked: a worker refuses clients it is not a pref of.

import type { Link } from './peer-link.js'

interface Claim {
  waiting: Set<string>
  done(): void
  timer: NodeJS.Timeout
}

export class SessionClaims {
  #next = 1
  #claims = new Map<number, Claim>()
  readonly #timeoutMs: number

  constructor(opts: { timeoutMs: number }) {
    this.#timeoutMs = opts.timeoutMs
  }

  /** Sends the claim on `links` and resolves with the peers that did NOT answer in time. */
  claim(clientId: string, links: Link[]): Promise<string[]> {
    if (links.length === 0) return Promise.resolve([])
    const claimId = this.#next++
    return new Promise<string[]>((resolve) => {
      const claim: Claim = {
        waiting: new Set(links.map((l) => l.peerId)),
        done: () => {
          clearTimeout(claim.timer)
          this.#claims.delete(claimId)
          resolve([...claim.waiting])
        },
        timer: setTimeout(() => claim.done(), this.#timeoutMs),
      }
      this.#claims.set(claimId, claim)
      for (const link of links) link.send({ body: 'session_claim', session_claim: { client_id: clientId, claim_id: claimId } })
    })
  }

  onAck(peerId: string, claimId: number): void {
    const claim = this.#claims.get(claimId)
    if (!claim) return
    claim.waiting.delete(peerId)
    if (claim.waiting.size === 0) claim.done()
  }

  /** A link dropped: its answer will not come. */
  peerDown(peerId: string): void {
    for (const claim of [...this.#claims.values()]) {
      if (claim.waiting.delete(peerId) && claim.waiting.size === 0) claim.done()
    }
  }

  close(): void {
    for (const claim of [...this.#claims.values()]) claim.done()
  }
}

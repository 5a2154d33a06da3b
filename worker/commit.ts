// What a QoS 1/2 acknowledgement waits for ("commit -> ack"): the store writes and the
// forwards to peers that one message caused. Store writes are promises; a forward is a
// callback from the fabric (`Settle`), because a promise, its two reactions and a microtask
// per forwarded message were the largest cost of cross-worker QoS 1 on the publishing worker.
//
//   const c = new Commit()
//   c.add(storeWrite)              // a promise
//   fabric.forward(peer, msg, groups, normal, c.hold())   // settle() called once, maybe at once
//   c.seal(target)                 // target.settle(err) when all settled (now, if none is pending)

/** Receives the outcome of one wait: null when it committed. Called exactly once. */
export interface Settle {
  settle(err: Error | null): void
}

export class Commit implements Settle {
  /** waits not settled yet, plus one held by the caller until seal() */
  #waiting = 1
  #err: Error | null = null
  #target: Settle | null = null

  /** Waits for a promise (a store write). */
  add(p: Promise<unknown>): void {
    this.#waiting++
    p.then(
      () => this.settle(null),
      (err: Error) => this.settle(err),
    )
  }

  /** One more wait, settled by whoever is given the returned Settle. */
  hold(): Settle {
    this.#waiting++
    return this
  }

  settle(err: Error | null): void {
    if (err !== null && this.#err === null) this.#err = err
    if (--this.#waiting === 0) this.#target!.settle(this.#err)
  }

  /** No more waits: `target` learns the outcome once every wait settled, within this call if none is pending. */
  seal(target: Settle): void {
    this.#target = target
    this.settle(null)
  }

  /** seal() as a promise: resolves once every wait settled, rejects with the first failure. */
  sealed(): Promise<void> {
    return new Promise((resolve, reject) => this.seal({ settle: (err) => (err === null ? resolve() : reject(err)) }))
  }
}

/** A Settle that only counts failures (QoS 1/2 published with nobody waiting, such as a will). */
export function countFailures(onFailure: (err: Error) => void): Settle {
  return {
    settle(err) {
      if (err !== null) onFailure(err)
    },
  }
}

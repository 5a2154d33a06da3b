// Hybrid logical clock (Kulkarni et al.): a timestamp (wall ms, logical) that follows the
// physical clock but never goes backwards and is always above every timestamp this node has
// seen. Used to order retained set/clear across workers (last writer wins).
//
// Restart safety: the clock persists a high-water mark `reserve` ms ahead of its wall value
// through `store.save`, and only when its wall value passes the saved mark. After a restart
// it starts at or above the saved mark, so it never issues a timestamp below one it issued
// before, even if the machine's clock stepped back, at the cost of one write per `reserve` ms.

export interface HlcTime {
  wall: number
  logical: number
}

export interface HlcStore {
  load(): number | undefined
  save(highWater: number): void
}

export function compareHlc(a: HlcTime, b: HlcTime): number {
  return a.wall !== b.wall ? a.wall - b.wall : a.logical - b.logical
}

export class Hlc {
  #wall: number
  #logical = 0
  #saved: number
  readonly #now: () => number
  readonly #store: HlcStore | undefined
  readonly #reserve: number

  constructor(opts: { now?: () => number; store?: HlcStore; reserveMs?: number } = {}) {
    this.#now = opts.now ?? Date.now
    this.#store = opts.store
    this.#reserve = opts.reserveMs ?? 1000
    this.#saved = opts.store?.load() ?? 0
    // strictly above anything issued before the restart
    this.#wall = this.#saved
    this.#logical = this.#saved > 0 ? 1 : 0
  }

  /** A new timestamp for a local event. */
  now(): HlcTime {
    const pt = this.#now()
    if (pt > this.#wall) {
      this.#wall = pt
      this.#logical = 0
    } else {
      this.#logical++
    }
    this.#persist()
    return { wall: this.#wall, logical: this.#logical }
  }

  /** Merges a timestamp received from another node; returns the new local time. */
  receive(remote: HlcTime): HlcTime {
    const pt = this.#now()
    const wall = Math.max(this.#wall, remote.wall, pt)
    if (wall === this.#wall && wall === remote.wall) this.#logical = Math.max(this.#logical, remote.logical) + 1
    else if (wall === this.#wall) this.#logical++
    else if (wall === remote.wall) this.#logical = remote.logical + 1
    else this.#logical = 0
    this.#wall = wall
    this.#persist()
    return { wall: this.#wall, logical: this.#logical }
  }

  /** The last issued time, without advancing. */
  peek(): HlcTime {
    return { wall: this.#wall, logical: this.#logical }
  }

  #persist(): void {
    if (!this.#store || this.#wall < this.#saved) return
    this.#saved = this.#wall + this.#reserve
    this.#store.save(this.#saved)
  }
}

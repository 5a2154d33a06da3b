// Order-independent set digests: the sum, mod 2^64, of the first 8 bytes of sha1 of each
// entry's canonical string. Adding or removing one entry is O(1); two nodes holding the same
// set compute the same digest whatever order they learnt it in.

import { createHash } from 'node:crypto'

const MASK = (1n << 64n) - 1n

export function entryHash(canonical: string): bigint {
  return createHash('sha1').update(canonical).digest().readBigUInt64BE(0)
}

export class SumDigest {
  #sum = 0n

  add(canonical: string): void {
    this.#sum = (this.#sum + entryHash(canonical)) & MASK
  }

  remove(canonical: string): void {
    this.#sum = (this.#sum - entryHash(canonical)) & MASK
  }

  reset(): void {
    this.#sum = 0n
  }

  toString(): string {
    return this.#sum.toString(16).padStart(16, '0')
  }
}

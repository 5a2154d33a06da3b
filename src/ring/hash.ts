// The ring's hash: MurmurHash3 x86_32 (seed 0) over the UTF-8 bytes of a key.
//
// Why not hashring's default (md5)? One `crypto.createHash` per lookup costs about a
// microsecond and allocates; murmur3 is a few dozen integer operations, mixes well enough for
// consistent hashing (every input bit avalanches through `fmix32`), and is fully specified, so
// any node (or another language) computes the same positions. See docs/ring.md.

import { Buffer } from 'node:buffer'

const scratch = Buffer.alloc(1024)
/** hashring reads the 4 bytes as little-endian right after each call, so one buffer is reused. */
const out = Buffer.alloc(4)

export function murmur3(key: string, seed = 0): number {
  let bytes: Uint8Array = scratch
  let len = key.length
  let ascii = len <= scratch.length
  if (ascii) {
    for (let i = 0; i < len; i++) {
      const c = key.charCodeAt(i)
      if (c > 0x7f) {
        ascii = false
        break
      }
      scratch[i] = c
    }
  }
  if (!ascii) {
    bytes = Buffer.from(key, 'utf8')
    len = bytes.length
  }
  let h = seed >>> 0
  const tail = len & ~3
  for (let i = 0; i < tail; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, 0x1b873593)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  const rest = len & 3
  if (rest > 0) {
    let k = bytes[tail]!
    if (rest > 1) k |= bytes[tail + 1]! << 8
    if (rest > 2) k |= bytes[tail + 2]! << 16
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, 0x1b873593)
    h ^= k
  }
  h ^= len
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The hashring `algorithm` function: 4 little-endian bytes of murmur3(key). */
export function ringHash(key: string): Buffer {
  const h = murmur3(key)
  out[0] = h & 0xff
  out[1] = (h >>> 8) & 0xff
  out[2] = (h >>> 16) & 0xff
  out[3] = h >>> 24
  return out
}

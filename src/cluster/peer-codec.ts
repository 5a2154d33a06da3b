// The Peer.Link codec: protobuf (proto-loader) for every PeerMessage, except the one the data
// path sends hundreds of times a second, a packed PublishBatch, which is framed here by hand.
// The bytes are the same protobuf either way (a test checks it against protobufjs), so a peer
// cannot tell; what changes is the cost. protobufjs builds a message object, a writer with an
// operation per field, and a second buffer into which it copies the whole batch; here the
// envelope is written into room that packEntries left in front of the batch, and read back as
// a view. On the receiving side the decoder is given the bytes first and hands every other
// message, or anything it does not expect, to protobufjs.
//
//   PeerMessage { publish_batch (6) = PublishBatch { batch_id (1), packed (3) } }
//   0x32 len(inner) | 0x08 varint(batch_id) | 0x1a len(packed) | packed ...

import { Buffer } from 'node:buffer'
import { packEntries, type PackedEntry } from './packed-batch.js'
import type { PbPeerMessage } from './proto-types.js'

/** A PeerMessage already serialized (a packed PublishBatch): written to the stream as it is. */
export class EncodedPeerMessage {
  constructor(readonly bytes: Buffer) {}
}

const TAG_PUBLISH_BATCH = (6 << 3) | 2
const TAG_BATCH_ID = (1 << 3) | 0
const TAG_PACKED = (3 << 3) | 2
/** the longest envelope: three tags, two 5-byte lengths, a 64-bit varint */
const HEADROOM = 3 + 5 + 5 + 10

/** The PeerMessage `{ publish_batch: { batch_id, packed } }` with `entries` packed in the batch. */
export function encodePublishBatch(batchId: number, entries: readonly PackedEntry[], version: number): EncodedPeerMessage {
  const buf = packEntries(entries, version, HEADROOM)
  const packedLen = buf.length - HEADROOM
  const inner = 1 + varintSize(batchId) + 1 + varintSize(packedLen) + packedLen
  const start = HEADROOM - (1 + varintSize(inner) + inner - packedLen)
  let o = start
  buf[o++] = TAG_PUBLISH_BATCH
  o = writeVarint(buf, o, inner)
  buf[o++] = TAG_BATCH_ID
  o = writeVarint(buf, o, batchId)
  buf[o++] = TAG_PACKED
  writeVarint(buf, o, packedLen)
  return new EncodedPeerMessage(buf.subarray(start))
}

/** Wraps proto-loader's serializer: an EncodedPeerMessage goes out as its bytes. */
export function peerSerializer(slow: (value: object) => Buffer): (value: object) => Buffer {
  return (value) => (value instanceof EncodedPeerMessage ? value.bytes : slow(value))
}

/** Wraps proto-loader's deserializer: a plain packed PublishBatch is read here, the rest by protobufjs. */
export function peerDeserializer(slow: (bytes: Buffer) => object): (bytes: Buffer) => object {
  return (bytes) => decodePublishBatch(bytes) ?? slow(bytes)
}

/**
 * Reads a PeerMessage that is exactly a PublishBatch of batch_id and packed (in any order, each
 * at most once), as proto-loader would give it (defaults filled in, `body` set). Anything else
 * (ForwardedMessages, unknown fields, a batch ID above 2^53, a malformed length) returns null.
 */
export function decodePublishBatch(b: Buffer): PbPeerMessage | null {
  if (b.length < 2 || b[0] !== TAG_PUBLISH_BATCH) return null
  let p = 1
  const inner = readVarint(b, p)
  if (inner === null) return null
  p = inner.end
  const end = b.length
  if (p + inner.value !== end) return null
  let batchId = 0
  let packed: Buffer | null = null
  let seenId = false
  while (p < end) {
    const tag = b[p++]
    if (tag === TAG_BATCH_ID && !seenId) {
      const v = readVarint(b, p)
      if (v === null) return null
      batchId = v.value
      p = v.end
      seenId = true
    } else if (tag === TAG_PACKED && packed === null) {
      const v = readVarint(b, p)
      if (v === null || v.end + v.value > end) return null
      packed = b.subarray(v.end, v.end + v.value)
      p = v.end + v.value
    } else return null
  }
  return { body: 'publish_batch', publish_batch: { batch_id: batchId, messages: [], packed: packed ?? Buffer.alloc(0) } }
}

function varintSize(n: number): number {
  let size = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    size++
  }
  return size
}

function writeVarint(buf: Buffer, o: number, n: number): number {
  while (n >= 0x80) {
    buf[o++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  buf[o++] = n
  return o
}

/** A varint at `p` that fits in a safe integer, and where it ends; null if truncated or larger. */
function readVarint(b: Buffer, p: number): { value: number; end: number } | null {
  let value = 0
  let mul = 1
  for (let k = 0; k < 8 && p < b.length; k++) {
    const byte = b[p++]!
    value += (byte & 0x7f) * mul
    if ((byte & 0x80) === 0) return value <= Number.MAX_SAFE_INTEGER ? { value, end: p } : null
    mul *= 0x80
  }
  return null
}

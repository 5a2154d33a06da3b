// PublishAck.ok_ranges (wire revision 3): the acknowledged message ids of one ack frame as
// runs of consecutive ids. Ids are per-link sequence numbers and a receiver acknowledges them
// mostly in order, so a frame acknowledging hundreds of messages is one or a few runs, where
// `repeated uint64 msg_ids` costs protobuf a 64-bit decode and conversion per id.
//
//   ranges := (first:u48 count:u32)*      big-endian

import { Buffer } from 'node:buffer'

export class AckRangesError extends Error {}

const RANGE_BYTES = 10

/** Encodes ids (any order; runs are found in the order given). */
export function encodeAckRanges(ids: readonly number[]): Buffer {
  const runs: number[] = []
  for (let i = 0; i < ids.length; ) {
    const first = ids[i]!
    let n = 1
    while (i + n < ids.length && ids[i + n] === first + n && n < 0xffffffff) n++
    runs.push(first, n)
    i += n
  }
  const buf = Buffer.allocUnsafe((runs.length / 2) * RANGE_BYTES)
  for (let r = 0, o = 0; r < runs.length; r += 2, o += RANGE_BYTES) {
    const first = runs[r]!
    buf.writeUInt16BE(Math.floor(first / 0x1_0000_0000), o)
    buf.writeUInt32BE(first % 0x1_0000_0000, o + 2)
    buf.writeUInt32BE(runs[r + 1]!, o + 6)
  }
  return buf
}

/** Calls `each` for every id, run by run. Throws AckRangesError on a truncated buffer. */
export function forEachAckRange(buf: Buffer, each: (id: number) => void): void {
  if (buf.length % RANGE_BYTES !== 0) throw new AckRangesError(`ack ranges of ${buf.length} bytes`)
  for (let o = 0; o < buf.length; o += RANGE_BYTES) {
    const first = buf.readUInt16BE(o) * 0x1_0000_0000 + buf.readUInt32BE(o + 2)
    const n = buf.readUInt32BE(o + 6)
    for (let i = 0; i < n; i++) each(first + i)
  }
}

// Key layout helpers. Keys are lmdb-js ordered-binary values: a string, or an array
// `[group, sub]` encoded as `group 0x00 sub`, so all records of one client form one contiguous
// range that does not overlap a client whose ID extends it ("a" vs "ab": 'a' 0x00 ... < 'ab').
//
// LMDB keys are at most 1978 bytes (4 KiB pages) while MQTT strings may be 65535 bytes, and
// ordered-binary writes long strings raw (a U+0000 inside one would read as the separator).
// So a key part that is long, contains U+0000, or starts with our marker is replaced by
// MARKER + sha256 hex. The mapping stays injective (no raw part starts with the marker) and
// per-client ranges still work because every record of a client uses the same part. The real
// client ID, filter or topic is always inside the record itself.

import { Buffer } from 'node:buffer'
import { createHash } from 'node:crypto'

/** Bytes allowed raw per key part; two parts plus separators stay well under 1978. */
const MAX_RAW_PART_BYTES = 900
const MARKER = '\u0001#'

export function keyPart(s: string): string {
  if (s.length * 3 <= MAX_RAW_PART_BYTES || Buffer.byteLength(s) <= MAX_RAW_PART_BYTES) {
    if (!s.startsWith(MARKER) && !s.includes('\u0000')) return s
  }
  return MARKER + createHash('sha256').update(s).digest('hex')
}

/**
 * Upper bound for `[group, ...]` ranges: 0xFF sorts after the first byte of any encoded
 * number (0x10-0x1F) or string (0x1B, or a UTF-8 byte <= 0xF4).
 */
export const RANGE_END = Buffer.from([0xff])

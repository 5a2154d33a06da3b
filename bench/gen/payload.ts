// Layout of the generator's PUBLISH payload. The subscriber side needs, per message, which
// publisher sent it (for the closed-loop window and loss accounting), its sequence number
// (duplicates and gaps) and when it was written (latency), all in the same process clock:
//
//   0        4        8                16              payloadSize
//   | pubIdx | seq    | sentAt (f64 ms) | zero padding |
//
// sentAt is performance.now() in milliseconds (sub-microsecond resolution, monotonic).

export const PAYLOAD_MIN = 16
export const OFF_PUB = 0
export const OFF_SEQ = 4
export const OFF_SENT_AT = 8
/** seq value of priming messages, sent before measuring and never counted */
export const SEQ_PRIME = 0xffffffff

export function effectivePayloadSize(requested: number): number {
  return Math.max(PAYLOAD_MIN, requested)
}

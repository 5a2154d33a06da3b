// Peeking at a connection's first packet: the router needs the CONNECT's client ID (and protocol
// level, to answer in the client's version) before it can pick a worker, and must then forward
// the bytes untouched. peekConnect looks at the bytes buffered so far and says: need more, here
// is the CONNECT, or reject (with a reason for the metric).
//
//   byte 0      0x10  CONNECT, flags 0 [MQTT-2.2.2-1]   -> anything else: reject 'not-connect'
//   bytes 1..4  remaining length, varint (<= 4 bytes)   -> malformed: reject 'malformed'
//   header + remaining length > maxBytes                -> reject 'too-large' (before buffering it)
//   whole packet buffered                               -> mqtt-packet parses it (3.1, 3.1.1, 5.0)

import mqtt from 'mqtt-packet'

export type PeekReject = 'not-connect' | 'malformed' | 'too-large'

export type PeekResult =
  | { kind: 'more' }
  | { kind: 'connect'; clientId: string; protocolVersion: 3 | 4 | 5; length: number }
  | { kind: 'reject'; reason: PeekReject; detail: string }

const MORE: PeekResult = { kind: 'more' }

// One parser for the whole process: it only ever sees one complete packet per call and parses it
// synchronously, so no per-connection parser is needed. mqtt-packet's parser does not recover
// cleanly from an error (it keeps unconsumed bytes), so a fresh one replaces it after each error.
const last: { packet?: mqtt.Packet; error?: Error } = {}
let parser = newParser()

function newParser(): mqtt.Parser {
  const p = mqtt.parser()
  p.on('packet', (packet: mqtt.Packet) => {
    last.packet = packet
  })
  p.on('error', (err: Error) => {
    last.error = err
  })
  return p
}

/** Inspects `buf` (everything received so far, starting at the first byte of the connection). */
export function peekConnect(buf: Buffer, maxBytes: number): PeekResult {
  if (buf.length === 0) return MORE
  if (buf[0] !== 0x10) return { kind: 'reject', reason: 'not-connect', detail: `first byte 0x${buf[0]!.toString(16)} is not CONNECT` }
  let remaining = 0
  let multiplier = 1
  let pos = 1
  for (;;) {
    if (pos >= buf.length) return pos > 4 ? malformed('remaining length longer than 4 bytes') : MORE
    if (pos > 4) return malformed('remaining length longer than 4 bytes')
    const b = buf[pos++]!
    remaining += (b & 0x7f) * multiplier
    if ((b & 0x80) === 0) break
    multiplier *= 128
  }
  const length = pos + remaining
  if (length > maxBytes) return { kind: 'reject', reason: 'too-large', detail: `CONNECT of ${length} bytes exceeds ${maxBytes}` }
  if (buf.length < length) return MORE
  parser.parse(buf.length === length ? buf : buf.subarray(0, length))
  const { packet, error } = last
  last.packet = undefined
  last.error = undefined
  if (error) parser = newParser()
  if (error || !packet || packet.cmd !== 'connect') return malformed(error?.message ?? 'not a CONNECT')
  return { kind: 'connect', clientId: packet.clientId ?? '', protocolVersion: (packet.protocolVersion ?? 4) as 3 | 4 | 5, length }
}

function malformed(detail: string): PeekResult {
  return { kind: 'reject', reason: 'malformed', detail }
}

/** CONNACK "server unavailable" in the client's protocol version: 3.1/3.1.1 return code 3, 5.0 reason 0x88. */
export function connackServerUnavailable(protocolVersion: 3 | 4 | 5): Buffer {
  return protocolVersion === 5 ? CONNACK_UNAVAILABLE_V5 : CONNACK_UNAVAILABLE_V4
}
// [MQTT-3.2.2] v3.1.1: 0x20, remaining 2, ack flags 0, return code 0x03
const CONNACK_UNAVAILABLE_V4 = Buffer.from([0x20, 0x02, 0x00, 0x03])
// [MQTT-3.2.2] v5: 0x20, remaining 3, ack flags 0, reason 0x88, properties length 0
const CONNACK_UNAVAILABLE_V5 = Buffer.from([0x20, 0x03, 0x00, 0x88, 0x00])

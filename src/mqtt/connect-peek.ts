// Peeking at a connection's first packet: the router needs the CONNECT's client ID (and protocol
// level, to answer in the client's version) before it can pick a worker, and must then forward
// the bytes untouched. peekConnect looks at the bytes buffered so far and says: need more, here
// is the CONNECT, or reject (with a reason for the metric).
//
//   byte 0      0x10  CONNECT, flags 0 [MQTT-2.2.2-1]   -> anything else: reject 'not-connect'
//   bytes 1..4  remaining length, varint (<= 4 bytes)   -> malformed: reject 'malformed'
//   header + remaining length > maxBytes                -> reject 'too-large' (before buffering it)
//   whole packet buffered                               -> fields read in place (below), else
//                                                          mqtt-packet parses it (3.1, 3.1.1, 5.0)
//
// The common CONNECT (MQIsdp/3 or MQTT/4-5, no 5.0 properties) is read in place, checked the
// way mqtt-packet checks it: flags [MQTT-3.1.2-3], every length-prefixed field inside the
// packet. It is the router's per-connect hot path and mqtt-packet's parser costs a packet
// object, a BufferList and events per call. Anything else (5.0 properties, bridge levels, odd
// name/level pairs, errors) goes to mqtt-packet, which gives the verdict and the error text.

import { Buffer } from 'node:buffer'
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
  const fast = readConnect(buf, pos, length)
  if (fast !== null) return fast
  parser.parse(buf.length === length ? buf : buf.subarray(0, length))
  const { packet, error } = last
  last.packet = undefined
  last.error = undefined
  if (error) parser = newParser()
  if (error || !packet || packet.cmd !== 'connect') return malformed(error?.message ?? 'not a CONNECT')
  return { kind: 'connect', clientId: packet.clientId ?? '', protocolVersion: (packet.protocolVersion ?? 4) as 3 | 4 | 5, length }
}

const FLAG_USERNAME = 0x80
const FLAG_PASSWORD = 0x40
const FLAG_WILL_RETAIN = 0x20
const FLAG_WILL_QOS = 0x18
const FLAG_WILL = 0x04
const FLAG_RESERVED = 0x01

/**
 * The client ID and level of a complete CONNECT whose variable header starts at `pos`, or null
 * when mqtt-packet must decide (anything but the plain, well-formed case).
 */
function readConnect(buf: Buffer, pos: number, end: number): PeekResult | null {
  if (pos + 12 > end) return null
  let level: number
  if (buf[pos] === 0 && buf[pos + 1] === 4 && buf[pos + 2] === 0x4d && buf[pos + 3] === 0x51 && buf[pos + 4] === 0x54 && buf[pos + 5] === 0x54) {
    level = buf[pos + 6]! // "MQTT"
    if (level !== 4 && level !== 5) return null
    pos += 7
  } else if (buf[pos] === 0 && buf[pos + 1] === 6 && buf[pos + 2] === 0x4d && buf[pos + 3] === 0x51 && buf[pos + 4] === 0x49 && buf[pos + 5] === 0x73 && buf[pos + 6] === 0x64 && buf[pos + 7] === 0x70) {
    level = buf[pos + 8]!
    if (level !== 3) return null
    pos += 9
  } else {
    return null
  }
  const flags = buf[pos]!
  if (flags & FLAG_RESERVED) return null
  if (!(flags & FLAG_WILL) && flags & (FLAG_WILL_RETAIN | FLAG_WILL_QOS)) return null
  pos += 3 // flags, keep alive
  if (level === 5) {
    // properties: only an empty set is read here
    if (pos >= end || buf[pos] !== 0) return null
    pos++
    if (flags & FLAG_WILL) return null
  }
  if (pos + 2 > end) return null
  const idLength = buf.readUInt16BE(pos)
  pos += 2
  if (pos + idLength > end) return null
  const clientId = buf.toString('utf8', pos, pos + idLength)
  pos += idLength
  // will topic, will payload, username, password: each a 2-byte length and that many bytes
  let fields = (flags & FLAG_WILL ? 2 : 0) + (flags & FLAG_USERNAME ? 1 : 0) + (flags & FLAG_PASSWORD ? 1 : 0)
  for (; fields > 0; fields--) {
    if (pos + 2 > end) return null
    pos += 2 + buf.readUInt16BE(pos)
    if (pos > end) return null
  }
  return { kind: 'connect', clientId, protocolVersion: level as 3 | 4 | 5, length: end }
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

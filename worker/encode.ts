// Outgoing PUBLISH encoding. A message is encoded once per distinct form (protocol family x
// QoS x retain) and the same Buffer is written to every subscriber of that form; for QoS 1/2
// the 2-byte packet ID is patched into a copy. The plain form (3.1/3.1.1, or 5.0 without
// properties) is written by hand; 5.0 properties go through mqtt-packet's generator.

import { Buffer } from 'node:buffer'
import mqtt from 'mqtt-packet'
import type { BrokerMessage, QoS } from '../src/mqtt/message.js'

export interface PublishProps {
  payloadFormatIndicator?: boolean
  messageExpiryInterval?: number
  topicAlias?: number
  responseTopic?: string
  correlationData?: Buffer
  userProperties?: Record<string, string | string[]>
  subscriptionIdentifier?: number | number[]
  contentType?: string
}

/** Bytes the minimal encoding of a remaining length takes [MQTT-1.5.5]. */
export function varIntLength(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4
}

function writeVarInt(buf: Buffer, pos: number, n: number): number {
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    buf[pos++] = byte
  } while (n > 0)
  return pos
}

/**
 * Topic length when every character is ASCII (one byte each in UTF-8), else -1. Topics over 256
 * characters are left to the native UTF-8 writer, faster than a JS loop at that length.
 */
function asciiLength(topic: string): number {
  const n = topic.length
  if (n > 256) return -1
  for (let i = 0; i < n; i++) if (topic.charCodeAt(i) > 0x7f) return -1
  return n
}

/** Encodes a PUBLISH without properties (v5 gets an empty property block). Packet ID 0 if qos > 0: patch it. */
export function encodePlainPublish(topic: string, payload: Buffer, qos: QoS, retain: boolean, v5: boolean, packetId: number): Buffer {
  // ASCII topics (nearly all) are copied by charCode: Buffer.byteLength and buf.write are a
  // native call each, half the cost of encoding a small message
  const ascii = asciiLength(topic)
  const topicLen = ascii >= 0 ? ascii : Buffer.byteLength(topic)
  const remaining = 2 + topicLen + (qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + payload.length
  const total = 1 + varIntLength(remaining) + remaining
  const buf = Buffer.allocUnsafe(total)
  buf[0] = 0x30 | (qos << 1) | (retain ? 1 : 0)
  let pos = writeVarInt(buf, 1, remaining)
  buf[pos++] = topicLen >> 8
  buf[pos++] = topicLen & 0xff
  if (ascii >= 0) {
    for (let i = 0; i < ascii; i++) buf[pos + i] = topic.charCodeAt(i)
    pos += ascii
  } else pos += buf.write(topic, pos, 'utf8')
  if (qos > 0) {
    buf[pos++] = packetId >> 8
    buf[pos++] = packetId & 0xff
  }
  if (v5) buf[pos++] = 0
  buf.set(payload, pos)
  return buf
}

/** Encodes a v5 PUBLISH with properties through mqtt-packet. */
export function encodeV5Publish(topic: string, payload: Buffer, qos: QoS, retain: boolean, packetId: number, properties: PublishProps): Buffer {
  return mqtt.generate(
    { cmd: 'publish', topic, payload, qos, retain, dup: false, messageId: qos > 0 ? packetId : undefined, properties },
    { protocolVersion: 5 },
  )
}

/** Offset of the packet ID in an encoded PUBLISH (QoS > 0). */
export function packetIdOffset(buf: Buffer): number {
  let pos = 1
  while (buf[pos++]! & 0x80);
  const topicLen = (buf[pos]! << 8) | buf[pos + 1]!
  return pos + 2 + topicLen
}

/** A copy of `encoded` with `packetId` (and DUP when redelivering) set. */
export function withPacketId(encoded: Buffer, packetId: number, dup: boolean): Buffer {
  const out = Buffer.allocUnsafe(encoded.length)
  out.set(encoded)
  const at = packetIdOffset(out)
  out[at] = packetId >> 8
  out[at + 1] = packetId & 0xff
  if (dup) out[0] = out[0]! | 0x08
  return out
}

/** Properties a v5 subscriber receives for `msg`, or null when there are none. */
export function v5Properties(msg: BrokerMessage, subIds: number[] | undefined): PublishProps | null {
  const p = msg.properties
  if (p === undefined && subIds === undefined && msg.expiresAt === undefined) return null
  const out: PublishProps = {}
  if (p !== undefined) {
    if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator
    if (p.contentType !== undefined) out.contentType = p.contentType
    if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic
    if (p.correlationData !== undefined) out.correlationData = p.correlationData
    if (p.userProperties !== undefined) out.userProperties = p.userProperties
  }
  // the interval sent is what is left of it [MQTT-3.3.2-6]
  if (msg.expiresAt !== undefined) out.messageExpiryInterval = Math.max(0, Math.ceil((msg.expiresAt - Date.now()) / 1000))
  if (subIds !== undefined && subIds.length > 0) out.subscriptionIdentifier = subIds.length === 1 ? subIds[0] : subIds
  return out
}

/**
 * Per-message cache of encoded forms, reused for every message (fan-out is synchronous).
 * Slot = (v5 ? 8 : 0) | qos << 1 | retain. Only forms without per-subscriber properties are cached.
 */
export class EncodeCache {
  #msg: BrokerMessage | null = null
  #slots: (Buffer | undefined)[] = new Array(16).fill(undefined)
  /** the reset (fan-out) each slot was filled in: a slot from an earlier one is stale */
  #filledIn: number[] = new Array(16).fill(0)
  #gen = 1
  #primedMsg: BrokerMessage | null = null
  #primedFrame: Buffer | null = null
  #primedSlot = 0

  /**
   * `frame` is the publisher's own plain QoS 0 PUBLISH for `msg` (no DUP, no retain, no
   * properties): byte for byte the form its subscribers of the same family get. The next
   * reset(msg) takes it as that form instead of encoding it again.
   */
  prime(msg: BrokerMessage, frame: Buffer, v5: boolean): void {
    this.#primedMsg = msg
    this.#primedFrame = frame
    this.#primedSlot = v5 ? 8 : 0
  }

  /** Starts the fan-out of `msg`: forms cached for earlier messages no longer count. */
  reset(msg: BrokerMessage): void {
    this.#msg = msg
    // a generation instead of clearing 16 slots per message (Array#fill is a runtime call)
    this.#gen = this.#gen === 0x3fffffff ? 1 : this.#gen + 1
    if (this.#primedMsg === null) return
    if (this.#primedMsg === msg) {
      this.#slots[this.#primedSlot] = this.#primedFrame!
      this.#filledIn[this.#primedSlot] = this.#gen
    }
    this.#primedMsg = null
    this.#primedFrame = null
  }

  /**
   * The plain QoS 0 form of the message being fanned out, if it is at hand (primed, or encoded
   * for a local subscriber): the 3.1.1 form first, else the 5.0 one, which is plain only when
   * the message has no properties and no expiry. For forwards to peers.
   */
  plain(msg: BrokerMessage): Buffer | null {
    if (this.#msg !== msg) return null
    if (this.#filledIn[0] === this.#gen) return this.#slots[0]!
    if (this.#filledIn[8] === this.#gen && msg.properties === undefined && msg.expiresAt === undefined) return this.#slots[8]!
    return null
  }

  /** Encoded PUBLISH (packet ID 0) for a subscriber without subscription identifiers. */
  get(msg: BrokerMessage, qos: QoS, retain: boolean, v5: boolean): Buffer {
    const cacheable = this.#msg === msg
    const slot = (v5 ? 8 : 0) | (qos << 1) | (retain ? 1 : 0)
    if (cacheable && this.#filledIn[slot] === this.#gen) return this.#slots[slot]!
    let buf: Buffer
    const props = v5 ? v5Properties(msg, undefined) : null
    if (props === null) buf = encodePlainPublish(msg.topic, msg.payload, qos, retain, v5, 0)
    else buf = encodeV5Publish(msg.topic, msg.payload, qos, retain, 0, props)
    if (cacheable) {
      this.#slots[slot] = buf
      this.#filledIn[slot] = this.#gen
    }
    return buf
  }
}

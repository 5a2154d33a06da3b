import { describe, expect, it } from 'vitest'
import * as protoLoader from '@grpc/proto-loader'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import { packEntries, PACKED_VERSION, PACKED_VERSION_NO_FRAMES, type PackedEntry } from '../../src/cluster/packed-batch.js'
import { decodePublishBatch, encodePublishBatch, EncodedPeerMessage, peerDeserializer, peerSerializer } from '../../src/cluster/peer-codec.js'
import { LOADER_OPTIONS, protoPath, ringmqGrpc } from '../../src/cluster/proto.js'
import { encodePlainPublish } from '../../worker/encode.js'

// protobufjs, as proto-loader gives it: the reference for every byte
const link = (protoLoader.loadSync(protoPath(), LOADER_OPTIONS)['ringmq.Peer'] as protoLoader.ServiceDefinition).Link!
const slowEncode = link.requestSerialize as (v: object) => Buffer
const slowDecode = link.requestDeserialize as (b: Buffer) => object

/** a length-delimited field or message: tag, varint length, bytes */
const field = (tag: number, body: Buffer): Buffer => {
  const len: number[] = []
  for (let n = body.length; ; n = Math.floor(n / 128)) {
    len.push(n >= 128 ? (n % 128) | 0x80 : n)
    if (n < 128) break
  }
  return Buffer.concat([Buffer.from([tag, ...len]), body])
}
// what decoding gives, with the batch's bytes compared as bytes (deep equality of large buffers is slow)
const shape = (m: object | null): unknown => {
  const b = (m as { publish_batch?: { packed: Buffer } } | null)?.publish_batch
  return b ? { ...m, publish_batch: { ...b, packed: b.packed.toString('hex') } } : m
}

const msg = (i: number, payload = Buffer.from(`m${i}`)): BrokerMessage => ({ topic: `t/${i % 3}`, payload, qos: 0, retain: false, origin: 'w1', publisherId: `c${i % 2}` })
const entries = (n: number, payloadBytes = 4): PackedEntry[] =>
  Array.from({ length: n }, (_, i) => {
    const m = msg(i, Buffer.alloc(payloadBytes, i))
    return { msg: m, msgId: 0, groups: [], normal: true, frame: encodePlainPublish(m.topic, m.payload, 0, false, false, 0) }
  })

describe('Peer.Link codec: packed PublishBatch framed by hand', () => {
  // batch IDs across varint lengths, batches whose lengths take 1, 2 and 3 varint bytes
  const ids = [1, 127, 128, 16_384, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]
  const sizes: [number, number][] = [[1, 4], [3, 30], [500, 64], [2, 100_000]]

  it('writes exactly the bytes protobufjs writes, for both packed versions', () => {
    for (const id of ids) {
      for (const [n, bytes] of sizes) {
        for (const version of [PACKED_VERSION, PACKED_VERSION_NO_FRAMES]) {
          const e = entries(n, bytes)
          const fast = encodePublishBatch(id, e, version).bytes
          const slow = slowEncode({ publish_batch: { batch_id: id, messages: [], packed: packEntries(e, version) } })
          expect(fast.equals(slow), `id ${id}, ${n} x ${bytes} B, v${version}`).toBe(true)
        }
      }
    }
  })

  it('reads back what protobufjs reads, with the batch as a view of the received bytes', () => {
    for (const id of ids) {
      for (const [n, bytes] of sizes) {
        const wire = slowEncode({ publish_batch: { batch_id: id, messages: [], packed: packEntries(entries(n, bytes)) } })
        const fast = decodePublishBatch(wire)
        expect(shape(fast)).toEqual(shape(slowDecode(wire)))
        const packed = (fast as { publish_batch: { packed: Buffer } }).publish_batch.packed
        expect(packed.buffer).toBe(wire.buffer)
      }
    }
    // fields in the other order, and a batch without an ID (0, the default)
    const packed = packEntries(entries(2))
    const reordered = field(0x32, Buffer.concat([field(0x1a, packed), Buffer.from([0x08, 0x05])]))
    expect(decodePublishBatch(reordered)).toEqual(slowDecode(reordered))
    const noId = slowEncode({ publish_batch: { messages: [], packed } })
    expect(decodePublishBatch(noId)).toEqual(slowDecode(noId))
  })

  it('leaves every other message, and anything unexpected, to protobufjs', () => {
    const packed = packEntries(entries(2))
    const good = encodePublishBatch(7, entries(2), PACKED_VERSION).bytes
    const others: Buffer[] = [
      slowEncode({ heartbeat: { time: 5, epoch: 2 } }),
      slowEncode({ publish_ack: { msg_ids: [1, 2] } }),
      // ForwardedMessages instead of packed (peers before revision 3)
      slowEncode({ publish_batch: { batch_id: 3, messages: [{ topic: 'a', payload: Buffer.from('x'), msg_id: 1 }] } }),
      // an unknown field inside the batch
      field(0x32, Buffer.concat([field(0x1a, packed), Buffer.from([0x20, 0x01])])),
      // the batch ID twice, and a batch ID over 2^53
      field(0x32, Buffer.from([0x08, 1, 0x08, 2])),
      field(0x32, Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x1a, 0])),
    ]
    for (const b of others) {
      expect(decodePublishBatch(b)).toBeNull()
      expect(shape(peerDeserializer(slowDecode)(b))).toEqual(shape(slowDecode(b)))
    }
    // truncated or overlong: null here, and protobufjs decides what it is
    for (const b of [good.subarray(0, good.length - 1), Buffer.concat([good, Buffer.from([0])]), good.subarray(0, 1)]) expect(decodePublishBatch(b)).toBeNull()
  })

  it('sends an EncodedPeerMessage as it is and every other message through protobufjs', () => {
    const encoded = new EncodedPeerMessage(Buffer.from([0x32, 0]))
    expect(peerSerializer(slowEncode)(encoded)).toBe(encoded.bytes)
    const hb = { heartbeat: { time: 5, epoch: 2 } }
    expect(peerSerializer(slowEncode)(hb).equals(slowEncode(hb))).toBe(true)
  })

  it('is the codec of the Peer service both ways', () => {
    const def = ringmqGrpc().Peer.service.Link!
    const bytes = encodePublishBatch(9, entries(3), PACKED_VERSION).bytes
    for (const ser of [def.requestSerialize, def.responseSerialize]) expect(ser(new EncodedPeerMessage(bytes) as never)).toBe(bytes)
    for (const de of [def.requestDeserialize, def.responseDeserialize]) expect(de(bytes)).toEqual(slowDecode(bytes))
  })
})

import { describe, expect, it } from 'vitest'
import type { BrokerMessage } from '../../src/mqtt/message.js'
import { packEntries, PackedBatchError, unpackEntries, type PackedEntry } from '../../src/cluster/packed-batch.js'

const unpack = (buf: Buffer): PackedEntry[] => {
  const out: PackedEntry[] = []
  unpackEntries(buf, (e) => out.push(e))
  return out
}

const plain: BrokerMessage = { topic: 'a/b', payload: Buffer.from('hello'), qos: 0, retain: false, origin: 'w1', publisherId: 'c1' }
const full: BrokerMessage = {
  topic: 'ünï/côdé/🙂',
  payload: Buffer.alloc(70_000, 7),
  qos: 2,
  retain: true,
  origin: 'w2',
  publisherId: '',
  expiresAt: 1_790_000_000_123,
  properties: {
    payloadFormatIndicator: false,
    contentType: '',
    responseTopic: 'r/é',
    correlationData: Buffer.from([0, 1, 2]),
    userProperties: { k: ['v1', 'v2'], 'ü': 'x' },
  },
}

describe('packed PublishBatch records', () => {
  it('round-trip every field, in order, including empty strings, UTF-8, large payloads and repeated user properties', () => {
    const entries: PackedEntry[] = [
      { msg: plain, msgId: 0, groups: [], normal: true },
      { msg: full, msgId: 2 ** 40 + 5, groups: ['g/a/+', 'h/#'], normal: false },
      { msg: { ...plain, qos: 1, properties: { payloadFormatIndicator: true } }, msgId: 9, groups: [], normal: true },
    ]
    const got = unpack(packEntries(entries))
    expect(got).toEqual(entries)
    expect(got[1]!.msg.properties!.contentType).toBe('')
    expect(got[0]!.msg).not.toHaveProperty('expiresAt')
    expect(got[0]!.msg).not.toHaveProperty('properties')
  })

  it('an empty batch is zero bytes; truncated bytes are refused', () => {
    expect(packEntries([]).length).toBe(0)
    const buf = packEntries([{ msg: plain, msgId: 1, groups: ['g/x'], normal: true }])
    for (const cut of [1, 7, buf.length - 1]) expect(() => unpack(buf.subarray(0, cut))).toThrow(PackedBatchError)
  })
})

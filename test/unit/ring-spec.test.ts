import { describe, expect, it } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { DEFAULT_VNODES, formatRingSpec, loadRingSpecFile, parseRingSpec, standaloneSpec } from '../../src/ring/spec.js'
import { RingmqError } from '../../src/errors.js'

const good = {
  epoch: 3,
  replicas: 2,
  workers: [
    { id: 'w1', mqtt: '10.0.0.1:1884', peer: '10.0.0.1:7001' },
    { id: 'w2', mqtt: '10.0.0.2:1884', peer: '10.0.0.2:7001', weight: 2, state: 'draining' },
    { id: 'w3', mqtt: '[fd00::3]:1884', peer: 'w3.ringmq.svc:7001' },
  ],
}

function invalid(json: unknown): string {
  try {
    parseRingSpec(json)
  } catch (err) {
    expect(err).toBeInstanceOf(RingmqError)
    expect((err as RingmqError).code).toBe('ERR_RING_INVALID')
    return (err as Error).message
  }
  throw new Error('expected ERR_RING_INVALID')
}

describe('ring spec validation', () => {
  it('accepts a valid spec and fills defaults', () => {
    const spec = parseRingSpec(good)
    expect(spec.epoch).toBe(3)
    expect(spec.vnodes).toBe(DEFAULT_VNODES)
    expect(spec.workers.map((w) => [w.id, w.weight, w.state])).toEqual([
      ['w1', 1, 'active'],
      ['w2', 2, 'draining'],
      ['w3', 1, 'active'],
    ])
    expect(Object.isFrozen(spec) && Object.isFrozen(spec.workers[0])).toBe(true)
  })

  it.each([
    ['not an object', [], /JSON object/],
    ['negative epoch', { ...good, epoch: -1 }, /"epoch" must be an integer >= 0/],
    ['fractional replicas', { ...good, replicas: 1.5 }, /"replicas" must be an integer >= 1/],
    ['replicas above workers', { ...good, replicas: 4 }, /"replicas" \(4\) is larger than the number of workers \(3\)/],
    ['vnodes out of range', { ...good, vnodes: 0 }, /"vnodes" must be an integer from 1/],
    ['no workers', { ...good, workers: [] }, /"workers" must be a non-empty array/],
    ['duplicate ids', { ...good, workers: [good.workers[0], { ...good.workers[2], id: 'w1' }] }, /duplicate worker id "w1"/],
    ['bad address', { ...good, workers: [{ ...good.workers[0], mqtt: '10.0.0.1' }] }, /"mqtt" must be "host:port"/],
    ['port 0', { ...good, workers: [{ ...good.workers[0], peer: '10.0.0.1:0' }] }, /port must be 1..65535/],
    ['wildcard address', { ...good, workers: [{ ...good.workers[0], mqtt: '0.0.0.0:1884' }] }, /others can connect to/],
    ['shared mqtt address', { ...good, workers: [good.workers[0], { ...good.workers[2], mqtt: '10.0.0.1:1884' }] }, /already used/],
    ['bad weight', { ...good, workers: [{ ...good.workers[0], weight: 0 }] }, /"weight" must be a number > 0/],
    ['bad state', { ...good, workers: [{ ...good.workers[0], state: 'gone' }] }, /"state" must be "active" or "draining"/],
    ['bad id', { ...good, workers: [{ ...good.workers[0], id: 'w 1' }] }, /"id" must be 1-64 characters/],
    ['a ring too large to build', { ...good, vnodes: 65536, workers: good.workers.map((w) => ({ ...w, weight: 20 })) }, /more than 2000000: lower "vnodes"/],
    ['all draining', { ...good, replicas: 1, workers: [{ ...good.workers[1] }] }, /at least one worker must be "active"/],
  ])('rejects %s with a clear message', (_name, json, message) => {
    expect(invalid(json)).toMatch(message)
  })

  it('lists every problem at once', () => {
    const msg = invalid({ epoch: 'x', replicas: 0, workers: [{ id: '', mqtt: 1, peer: 'a:1' }] })
    expect(msg).toMatch(/epoch/)
    expect(msg).toMatch(/replicas/)
    expect(msg).toMatch(/"id"/)
    expect(msg).toMatch(/"mqtt"/)
  })

  it('round-trips through the file format', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmq-spec-'))
    try {
      const file = path.join(dir, 'ring.json')
      const spec = parseRingSpec(good)
      fs.writeFileSync(file, formatRingSpec(spec))
      expect(loadRingSpecFile(file)).toEqual(spec)
      fs.writeFileSync(file, '{"epoch": 1,')
      expect(() => loadRingSpecFile(file)).toThrow(/not valid JSON/)
      expect(() => loadRingSpecFile(path.join(dir, 'missing.json'))).toThrow(/cannot read ring spec/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('builds a standalone spec of one worker with replicas 1', () => {
    const spec = standaloneSpec('w9', '127.0.0.1:1884', '127.0.0.1:7001')
    expect(spec.replicas).toBe(1)
    expect(spec.workers).toEqual([{ id: 'w9', mqtt: '127.0.0.1:1884', peer: '127.0.0.1:7001', weight: 1, state: 'active' }])
    expect(() => standaloneSpec('bad id', 'a:1', 'b:2')).toThrow(/worker id/)
  })
})

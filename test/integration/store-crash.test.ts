// kill -9 durability of the LMDB store: a child process writes records continuously and prints
// each one only after its write promise resolved; it is SIGKILLed mid-stream, with writes in
// flight. Reopening must show every record whose commit was reported, and — because lmdb-js
// commits writes in issue order, one atomic transaction at a time — nothing out of order (the
// queue is a gap-free prefix of what was issued).
//
// Needs the build: `npx tsc -p .` (the child imports dist/src/store/lmdb-store.js).

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/log.js'
import { openLmdbStore } from '../../src/store/lmdb-store.js'
import { ROOT, cleanupTmp, tmpDir } from '../helpers/process.js'

const BUILT = path.join(ROOT, 'dist/src/store/lmdb-store.js')

// Each turn issues 100 record groups without waiting, so commits overlap the kill.
const WRITER = `
import { openLmdbStore } from ${JSON.stringify(pathToFileURL(BUILT).href)}
const store = openLmdbStore({ path: process.argv[2], log: { warn() {}, info() {}, debug() {}, error() {}, child() { return this } } })
const msg = (topic, payload) => ({ topic, payload, qos: 1, retain: false, origin: 'w1', publisherId: 'p' })
let n = 0
for (;;) {
  for (let k = 0; k < 100; k++) {
    const i = ++n
    Promise.all([
      store.enqueue('crash', { message: msg('q', Buffer.from('m' + i)), qos: 1, retain: false }),
      store.putSession({ v: 1, clientId: 'c' + i, protocolVersion: 5, expiryInterval: 60, disconnectedAt: null, will: null, willAt: null }),
      store.putSubscription({ v: 1, clientId: 'c' + i, filter: 'f/' + i, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }),
      store.putRetained({ v: 1, topic: 'r/' + i, message: msg('r/' + i, Buffer.from([i & 255, 0, 255])) }),
    ]).then(([q]) => process.stdout.write(i + ' ' + q.seq + '\\n'))
  }
  await new Promise((r) => setImmediate(r))
}
`

afterAll(() => cleanupTmp())

const SUBS = 3
const QUEUED = 300

const children = new Set<ChildProcess>()

/** Runs `script` until it reported `acks` lines, SIGKILLs it, returns every complete line. */
async function runAndKill(dir: string, script: string, acks: number): Promise<string[]> {
  const file = path.join(dir, 'writer.mjs')
  fs.writeFileSync(file, script)
  const child = spawn(process.execPath, [file, path.join(dir, 'env')], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const reported: string[] = []
  let stderr = ''
  let buf = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    const lines = buf.split('\n')
    buf = lines.pop()! // a partial last line was not fully reported
    reported.push(...lines)
    if (reported.length >= acks && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const signal = await exited
  children.delete(child)
  expect(signal, `writer should die by SIGKILL; stderr: ${stderr}`).toBe('SIGKILL')
  return reported
}

async function writeAndKill(dir: string, acks: number): Promise<[number, number][]> {
  const lines = await runAndKill(dir, WRITER, acks)
  return lines.map((l) => l.split(' ').map(Number) as [number, number])
}

describe('LMDB store survives kill -9', () => {
  afterEach(() => {
    for (const c of children) c.kill('SIGKILL')
    children.clear()
  })

  it.each([500, 5000])('keeps every reported commit when killed after %i acks', async (acks) => {
    expect(fs.existsSync(BUILT), 'run `npx tsc -p .` first').toBe(true)
    const dir = tmpDir('ringmq-crash-')
    const reported = await writeAndKill(dir, acks)
    expect(reported.length).toBeGreaterThanOrEqual(acks)
    expect(reported.every(([i, seq]) => Number.isInteger(i) && Number.isInteger(seq))).toBe(true)

    const store = openLmdbStore({ path: path.join(dir, 'env'), log: createLogger({ name: 't' }, () => {}) })
    try {
      const queue = store.peekQueue('crash', Number.MAX_SAFE_INTEGER)
      const bySeq = new Map(queue.map((q) => [q.seq, q.message.payload.toString()]))
      for (const [i, seq] of reported) {
        expect(bySeq.get(seq), `queued message ${i} (seq ${seq})`).toBe(`m${i}`)
        expect(store.getSession(`c${i}`)?.clientId, `session c${i}`).toBe(`c${i}`)
        expect(store.getSubscriptions(`c${i}`).map((s) => s.filter), `subscription of c${i}`).toEqual([`f/${i}`])
        const r = store.getRetained(`r/${i}`)
        expect(r?.message.payload.equals(Buffer.from([i & 255, 0, 255])), `retained r/${i}`).toBe(true)
      }
      console.log(`kill -9 after ${acks} acks: ${reported.length} reported, ${queue.length} on disk`)
      // commits are ordered and atomic: what survived is a gap-free prefix 1..K
      expect(queue.map((q) => q.seq)).toEqual(Array.from({ length: queue.length }, (_, k) => k + 1))
      expect(store.queueLength('crash')).toBe(queue.length)
      // and the environment is writable, continuing the seq
      const next = await store.enqueue('crash', { message: { topic: 'q', payload: Buffer.from('after'), qos: 1, retain: false, origin: 'w1', publisherId: 'p' }, qos: 1, retain: false })
      expect(next.seq).toBe(queue.length + 1)
    } finally {
      await store.close()
    }
  })
})

// Sessions are created (one event turn: session, subscriptions, queue, inflight, incoming QoS 2)
// and deleted (deleteSession: one batch) continuously; each is printed when its promise resolved.
// After kill -9 a session is either complete or entirely gone, never half deleted.
const CHURNER = `
import { openLmdbStore } from ${JSON.stringify(pathToFileURL(BUILT).href)}
const store = openLmdbStore({ path: process.argv[2], log: { warn() {}, info() {}, debug() {}, error() {}, child() { return this } } })
const msg = { topic: 'q', payload: Buffer.alloc(64, 1), qos: 1, retain: false, origin: 'w1', publisherId: 'p' }
const turn = () => new Promise((r) => setImmediate(r))
for (let k = 0; ; k++) {
  const id = 'c' + k
  const writes = [store.putSession({ v: 1, clientId: id, protocolVersion: 5, expiryInterval: 60, disconnectedAt: null, will: null, willAt: null })]
  for (let f = 0; f < ${SUBS}; f++) writes.push(store.putSubscription({ v: 1, clientId: id, filter: 'f/' + f, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }))
  for (let q = 0; q < ${QUEUED}; q++) writes.push(store.enqueue(id, { message: msg, qos: 1, retain: false }))
  writes.push(store.putInflight({ v: 1, clientId: id, packetId: 1, state: 'publish', qos: 1, message: msg, retain: false }))
  writes.push(store.addIncomingQos2(id, 7))
  Promise.all(writes).then(() => process.stdout.write('filled ' + k + '\\n'))
  await turn()
  if (k % 2 === 0) store.deleteSession(id).then(() => process.stdout.write('deleted ' + k + '\\n'))
  await turn()
}
`

describe('deleteSession is atomic across kill -9', () => {
  afterEach(() => {
    for (const c of children) c.kill('SIGKILL')
    children.clear()
  })

  it('leaves every session complete or entirely gone', async () => {
    expect(fs.existsSync(BUILT), 'run `npx tsc -p .` first').toBe(true)
    const dir = tmpDir('ringmq-crash-')
    const lines = await runAndKill(dir, CHURNER, 300)
    const filled = lines.filter((l) => l.startsWith('filled ')).map((l) => Number(l.slice(7)))
    const deleted = new Set(lines.filter((l) => l.startsWith('deleted ')).map((l) => Number(l.slice(8))))
    expect(deleted.size).toBeGreaterThan(0)

    const store = openLmdbStore({ path: path.join(dir, 'env'), log: createLogger({ name: 't' }, () => {}) })
    try {
      const present = new Set([...store.listSessions()].map((s) => s.clientId))
      for (const sub of store.listSubscriptions()) present.add(sub.clientId)
      let complete = 0
      for (const id of present) {
        const k = Number(id.slice(1))
        expect(deleted.has(k), `${id} was reported deleted`).toBe(false)
        expect(store.getSession(id), `session ${id}`).toBeDefined()
        expect(store.getSubscriptions(id), `subscriptions of ${id}`).toHaveLength(SUBS)
        expect(store.queueLength(id), `queue of ${id}`).toBe(QUEUED)
        expect(store.listInflight(id), `inflight of ${id}`).toHaveLength(1)
        expect(store.hasIncomingQos2(id, 7), `incoming QoS 2 of ${id}`).toBe(true)
        complete++
      }
      for (const k of filled) if (!deleted.has(k) && k % 2 === 1) expect(present.has(`c${k}`), `c${k} was reported filled`).toBe(true)
      console.log(`kill -9 while churning: ${filled.length} filled, ${deleted.size} deleted reported; ${complete} complete sessions on disk`)
    } finally {
      await store.close()
    }
  })
})

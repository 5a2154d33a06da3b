// `ringmq ctl` (built dist/) against real Admin services of in-process fabrics.

import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, cleanupTmp, freePorts, tmpDir } from '../helpers/process.js'
import { startCluster, startNode, makeSpec, type Node } from './cluster-harness.js'

interface Run {
  code: number
  stdout: string
  stderr: string
}

function ctl(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    // a generous RPC deadline: the nodes live in this (busy) test process
    execFile(process.execPath, [CLI, 'ctl', ...args], { timeout: 20_000, env: { ...process.env, RINGMQ_TIMEOUT: '15000' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

let nodes: Node[] = []
let server = ''
beforeAll(async () => {
  nodes = (await startCluster(3)).nodes
  server = `127.0.0.1:${nodes[0]!.port}`
})
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.fabric.close()))
  cleanupTmp()
})

describe('ringmq ctl', () => {
  it('ring show prints the spec as a table and as JSON', async () => {
    const human = await ctl('--server', server, 'ring', 'show')
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/epoch 1\s+replicas 2/)
    expect(human.stdout).toMatch(/^w3\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+\s+1\s+active$/m)
    const json = await ctl('--server', server, '--json', 'ring', 'show')
    expect(JSON.parse(json.stdout)).toEqual(nodes[0]!.fabric.ring())
  })

  it('status lists peers up', async () => {
    const human = await ctl('--server', server, 'status')
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/node w1 \(worker\)\s+epoch 1/)
    expect(human.stdout).toMatch(/^w2\s+127\.0\.0\.1:\d+\s+up/m)
    const json = JSON.parse((await ctl('--server', server, '--json', 'status')).stdout)
    expect(json.peers.map((p: { id: string; up: boolean }) => [p.id, p.up])).toEqual([['w2', true], ['w3', true]])
  })

  it('locate answers prefs and owner', async () => {
    const json = JSON.parse((await ctl('--server', server, '--json', 'locate', 'device-7')).stdout)
    const expected = nodes[0]!.fabric.locate('device-7')
    expect(json).toMatchObject({ client_id: 'device-7', prefs: expected.prefs, owner: expected.owner, live_here: false, node_id: 'w1' })
    const human = await ctl('--server', server, 'locate', 'device-7')
    expect(human.stdout).toContain(expected.prefs.join(','))
  })

  it('ring init compare-and-sets on epoch 0 and refuses on a node that has a ring', async () => {
    const dir = tmpDir()
    const file = path.join(dir, 'ring.json')
    const spec = await makeSpec(1, 1)
    fs.writeFileSync(file, JSON.stringify({ ...spec, epoch: 5 }))
    const refused = await ctl('--server', server, 'ring', 'init', '--file', file)
    expect(refused.code).toBe(1)
    expect(refused.stdout).toMatch(/refused: epoch is 1, expected 0/)
    // a fresh node at epoch 0 accepts
    const fresh = await startNode({ ...spec, epoch: 0 }, 'w1')
    nodes.push(fresh)
    const ok = await ctl('--server', `127.0.0.1:${fresh.port}`, '--json', 'ring', 'init', '--file', file)
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, epoch: 5 })
    expect(fresh.fabric.ring().epoch).toBe(5)
  })

  it('ring plan shows what a change would move, read-only', async () => {
    const current = nodes[0]!.fabric.ring()
    const [mqtt, peer] = await freePorts(2)
    const next = { ...current, epoch: 2, workers: [...current.workers, { id: 'w4', mqtt: `127.0.0.1:${mqtt}`, peer: `127.0.0.1:${peer}`, weight: 1, state: 'active' }] }
    const file = path.join(tmpDir(), 'next.json')
    fs.writeFileSync(file, JSON.stringify(next))
    const human = await ctl('--server', server, 'ring', 'plan', '--file', file)
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/ring epoch 1 -> 2/)
    expect(human.stdout).toMatch(/-> w4: /)
    const json = JSON.parse((await ctl('--server', server, '--json', 'ring', 'plan', '--file', file)).stdout)
    // the 4th of 4 equal workers takes about a quarter of the owners
    expect(json.ownerMoved).toBeGreaterThan(0.2)
    expect(json.ownerMoved).toBeLessThan(0.3)
    expect(nodes[0]!.fabric.ring().epoch).toBe(1)
  })

  it('fails clearly with exit code 2 when the server is unreachable', async () => {
    const [port] = await freePorts(1)
    const r = await ctl('--server', `127.0.0.1:${port}`, '--timeout', '1000', 'status')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/ERR_UNREACHABLE: cannot reach 127\.0\.0\.1:\d+/)
  })

  it('rejects an unknown command with a usage error', async () => {
    const r = await ctl('--server', server, 'frobnicate')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/unknown command "frobnicate"/)
  })
})

// `ringmq dev`: a whole local cluster from one command, stopped cleanly by SIGTERM.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { CLI, cleanupTmp, freePorts, tmpDir } from '../helpers/process.js'
import { Placement } from '../../src/ring/placement.js'
import { loadRingSpecFile } from '../../src/ring/spec.js'

const run = promisify(execFile)
const started: ChildProcess[] = []

afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  cleanupTmp()
})

function startDev(args: string[]): { child: ChildProcess; readyLine: Promise<string>; exited: Promise<number | null>; output: string[] } {
  const child = spawn(process.execPath, [CLI, 'dev', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  started.push(child)
  const output: string[] = []
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const readyLine = new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ready line; output:\n${output.join('\n').slice(-3000)}`)), 60_000)
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line)
      if (line.startsWith('ready ')) {
        clearTimeout(t)
        resolve(line)
      }
    })
    createInterface({ input: child.stderr! }).on('line', (line) => output.push(line))
    void exited.then((code) => reject(new Error(`dev exited (${code}) before ready; output:\n${output.join('\n').slice(-3000)}`)))
  })
  readyLine.catch(() => {})
  return { child, readyLine, exited, output }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => (s.destroy(), resolve(false)))
    s.once('error', () => resolve(true))
  })
}

describe('ringmq dev', () => {
  it('brings up a router and 3 workers, serves mosquitto clients, and stops them all on SIGTERM', async () => {
    const data = tmpDir('ringmq-dev-')
    const [routerPort] = await freePorts(1)
    const dev = startDev(['--port', String(routerPort), '--workers', '3', '--replicas', '2', '--data', data])
    const line = await dev.readyLine
    const m = /^ready router=127\.0\.0\.1:(\d+) admin=127\.0\.0\.1:(\d+) workers=(w1@127\.0\.0\.1:\d+),(w2@127\.0\.0\.1:\d+),(w3@127\.0\.0\.1:\d+)$/.exec(line)
    expect(m, line).not.toBeNull()
    expect(Number(m![1])).toBe(routerPort)
    // children's logs are forwarded with a prefix
    expect(dev.output.some((l) => l.startsWith('[w2] {'))).toBe(true)
    expect(dev.output.some((l) => l.startsWith('[router] {'))).toBe(true)

    // a subscriber and a publisher whose IDs the ring puts on the same worker
    const spec = loadRingSpecFile(path.join(data, 'ring.json'))
    expect(spec.replicas).toBe(2)
    const placement = new Placement(spec)
    const owner = placement.prefs('dev-sub')[0]!.id
    const pubId = Array.from({ length: 500 }, (_, i) => `dev-pub-${i}`).find((id) => placement.prefs(id)[0]!.id === owner)!
    const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(routerPort), '-i', 'dev-sub', '-t', 'dev/t', '-C', '1', '-W', '20'])
    // mosquitto_sub has no "subscribed" signal: publish retained so the order does not matter
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(routerPort), '-i', pubId, '-t', 'dev/t', '-m', 'hi', '-r'])
    expect((await sub).stdout.trim()).toBe('hi')

    dev.child.kill('SIGTERM')
    expect(await dev.exited).toBe(0)
    const ports = [routerPort!, ...line.match(/w\d@127\.0\.0\.1:(\d+)/g)!.map((w) => Number(w.split(':')[1]))]
    for (const p of ports) expect(await refused(p), `port ${p} closed`).toBe(true)
  }, 90_000)

  it('exits non-zero and stops the workers when a child fails at startup', async () => {
    const data = tmpDir('ringmq-dev-')
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()))
    const busy = (blocker.address() as net.AddressInfo).port
    try {
      const dev = startDev(['--port', String(busy), '--workers', '2', '--replicas', '1', '--data', data])
      const code = await dev.exited
      expect(code).not.toBe(0)
      expect(dev.output.join('\n')).toMatch(/startup failed: router exited during startup/)
      const spec = loadRingSpecFile(path.join(data, 'ring.json'))
      for (const w of spec.workers) expect(await refused(Number(w.mqtt.split(':')[1])), `${w.id} stopped`).toBe(true)
    } finally {
      blocker.close()
    }
  }, 90_000)
})

// Router cost at a fixed load: CPU per proxied message, memory per connection, CPU per connect,
// for ringmq's router and (same harness, same Mosquitto behind it) HAProxy in TCP mode.
//
//   npm run build && node dist/bench/router-cost.js [--idle 5000] [--connects 2000] [--rate 10000] [--seconds 5] [--only ringmq|haproxy]
//
// Each proxy fronts one Mosquitto (a C broker, so the figures are the proxy's alone, read from
// /proc/PID: on-CPU time from schedstat, VmRSS). Messages: 10 publishers and 1 subscriber to
// bench/# all through the proxy, QoS 0, 64-byte payloads at a fixed total rate; every message
// crosses the proxy twice (publisher -> broker, broker -> subscriber). The router runs with
// `node --max-semi-space-size=1` (see docs/router.md, Cost); ROUTER_NODE_ARGS overrides it.

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt-packet'
import { cpuUs, rssKb } from './proc/proc-stat.js'
import { haproxyConfig } from './targets/haproxy.js'

const { values } = parseArgs({
  options: { idle: { type: 'string', default: '5000' }, connects: { type: 'string', default: '2000' }, rate: { type: 'string', default: '10000' }, seconds: { type: 'string', default: '5' }, only: { type: 'string' } },
})
const IDLE = Number(values.idle)
const CONNECTS = Number(values.connects)
const RATE = Number(values.rate)
const SECONDS = Number(values.seconds)
/** one proxy only (ringmq or haproxy), e.g. while profiling */
const ONLY = values.only
/**
 * node flags for the router: by default the young-generation cap recommended for routers in
 * docs/router.md; ROUTER_NODE_ARGS replaces them (e.g. '' for none, or add '--cpu-prof --cpu-prof-dir=/tmp/x')
 */
const NODE_ARGS = (process.env.ROUTER_NODE_ARGS ?? '--max-semi-space-size=1').split(' ').filter(Boolean)
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const CLI = path.join(ROOT, 'dist/src/cli/main.js')
const procs: ChildProcess[] = []

async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const p = (s.address() as net.AddressInfo).port
  await new Promise((r) => s.close(r))
  return p
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), r(true)))
      s.once('error', () => r(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`port ${port} never opened`)
}

function start(cmd: string, args: string[], quiet = false): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', quiet ? 'ignore' : 'inherit'] })
  procs.push(c)
  return c
}

interface Client {
  socket: net.Socket
  received: number
}

function connect(port: number, clientId: string, onPublish?: () => void): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
    const parser = mqtt.parser()
    const client: Client = { socket, received: 0 }
    parser.on('packet', (p: mqtt.Packet) => {
      if (p.cmd === 'connack') {
        if ((p as mqtt.IConnackPacket).returnCode === 0) resolve(client)
        else reject(new Error(`CONNACK ${(p as mqtt.IConnackPacket).returnCode} for ${clientId}`))
      }
      else if (p.cmd === 'publish') {
        client.received++
        onPublish?.()
      }
    })
    socket.on('data', (d) => parser.parse(d))
    socket.once('error', reject)
    socket.write(mqtt.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 600 } as mqtt.IConnectPacket))
  })
}

function close(c: Client): Promise<void> {
  return new Promise((r) => {
    if (c.socket.destroyed) return r()
    c.socket.once('close', () => r())
    c.socket.end(mqtt.generate({ cmd: 'disconnect' } as mqtt.IDisconnectPacket))
  })
}

async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++
      out[i] = await fn(i)
    }
  }))
  return out
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))

const progress = (msg: string) => process.stderr.write(`[router-cost] ${msg}\n`)

async function measure(name: string, pid: number, port: number): Promise<Record<string, number | string>> {
  // memory per idle connection
  progress(`${name}: ${IDLE} idle connections`)
  await settle(1000)
  const rss0 = rssKb(pid)
  const idle = await pool(IDLE, 200, (i) => connect(port, `${name}-idle-${i}`))
  await settle(1500)
  const rss1 = rssKb(pid)
  await pool(idle.length, 200, (i) => close(idle[i]!))
  await settle(500)

  // CPU per connect (connect, CONNACK, DISCONNECT)
  progress(`${name}: ${CONNECTS} connects`)
  let cpu0 = cpuUs(pid)
  await pool(CONNECTS, 20, async (i) => close(await connect(port, `${name}-c-${i}`)))
  let cpu1 = cpuUs(pid)
  const perConnectUs = (cpu1 - cpu0) / CONNECTS

  // CPU per proxied message at a fixed rate
  progress(`${name}: ${RATE} msg/s for ${SECONDS} s`)
  const sub = await connect(port, `${name}-sub`)
  sub.socket.write(mqtt.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'bench/#', qos: 0 }] } as mqtt.ISubscribePacket))
  await settle(300)
  const pubs = await Promise.all(Array.from({ length: 10 }, (_, i) => connect(port, `${name}-pub-${i}`)))
  const frames = pubs.map((_, i) => mqtt.generate({ cmd: 'publish', topic: `bench/${i}`, payload: Buffer.alloc(64, 7), qos: 0, dup: false, retain: false } as mqtt.IPublishPacket))
  const tickMs = 10
  const perTick = Math.round((RATE * tickMs) / 1000)
  const ticks = (SECONDS * 1000) / tickMs
  cpu0 = cpuUs(pid)
  const t0 = performance.now()
  let sent = 0
  for (let t = 0; t < ticks; t++) {
    for (let k = 0; k < perTick; k++) {
      const i = (sent + k) % pubs.length
      pubs[i]!.socket.write(frames[i]!)
    }
    sent += perTick
    const due = t0 + (t + 1) * tickMs
    const wait = due - performance.now()
    if (wait > 0) await settle(wait)
  }
  for (let i = 0; i < 200 && sub.received < sent; i++) await settle(25)
  cpu1 = cpuUs(pid)
  const elapsed = (performance.now() - t0) / 1000
  await Promise.all([...pubs, sub].map(close))
  return {
    proxy: name,
    'idle conns': IDLE,
    'KB per conn': +((rss1 - rss0) / IDLE).toFixed(2),
    'RSS MB at idle load': +(rss1 / 1024).toFixed(1),
    'CPU us per connect': +perConnectUs.toFixed(1),
    'msgs sent': sent,
    'msgs received': sub.received,
    'achieved rate/s': Math.round(sent / elapsed),
    'CPU us per message (2 crossings)': +((cpu1 - cpu0) / sub.received).toFixed(2),
    'CPU % at rate': +(((cpu1 - cpu0) / 1e6 / elapsed) * 100).toFixed(1),
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmq-router-cost-'))
  try {
    const results: Record<string, number | string>[] = []
    for (const kind of ['ringmq', 'haproxy'] as const) {
      if (ONLY && ONLY !== kind) continue
      const mport = await freePort()
      const mosq = start('mosquitto', ['-p', String(mport)], true)
      await waitPort(mport)
      let proxy: ChildProcess
      let pport: number
      if (kind === 'ringmq') {
        const ring = path.join(dir, 'ring.json')
        fs.writeFileSync(ring, JSON.stringify({ epoch: 1, replicas: 1, workers: [{ id: 'm1', mqtt: `127.0.0.1:${mport}`, peer: '127.0.0.1:1' }] }))
        pport = await freePort()
        // connect timeout 5 s like HAProxy's `timeout connect 5s`: Mosquitto's listen backlog is
        // 100, so a burst of connects sees SYNs dropped and resent after a second
        proxy = start(process.execPath, [...NODE_ARGS, CLI, 'router', '--mqtt', `127.0.0.1:${pport}`, '--ring', ring, '--connect-timeout-ms', '5000'])
        await new Promise<void>((resolve) => createInterface({ input: proxy.stdout! }).on('line', (l) => l.includes('"ready"') && resolve()))
      } else {
        pport = await freePort()
        const cfg = path.join(dir, 'haproxy.cfg')
        fs.writeFileSync(cfg, haproxyConfig(pport, [mport]))
        proxy = start('/usr/sbin/haproxy', ['-db', '-f', cfg])
        await waitPort(pport)
      }
      results.push(await measure(kind, proxy.pid!, pport))
      proxy.kill('SIGTERM')
      mosq.kill('SIGTERM')
      await Promise.all([proxy, mosq].map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))))
    }
    console.table(results)
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
  process.exit(1)
})

// Shared bits of the worker integration tests: start a worker, connect MQTT.js clients, wait
// for observable conditions, raw sockets for bad input.

import net from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { startRingmq, splitHostPort, tmpDir, type RunningProcess } from '../helpers/process.js'

export interface Worker {
  proc: RunningProcess
  port: number
  url: string
  metricsUrl: string
  data: string
}

export async function startWorker(extra: string[] = [], data = tmpDir('ringmq-worker-')): Promise<Worker> {
  const proc = await startRingmq(['worker', '--id', 'w1', '--mqtt', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--data', data, ...extra])
  const { port } = splitHostPort(proc.ready.mqtt!)
  return { proc, port, url: `mqtt://127.0.0.1:${port}`, metricsUrl: `http://${proc.ready.metrics}/metrics`, data }
}

const clients = new Set<MqttClient>()

export async function connect(w: Worker, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(w.url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts })
  clients.add(c)
  return c
}

/** A client whose listeners can be attached before CONNACK arrives. */
export function connectLater(w: Worker, opts: IClientOptions = {}): MqttClient {
  const c = mqtt.connect(w.url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts })
  clients.add(c)
  return c
}

export async function closeClients(): Promise<void> {
  await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => undefined)))
  clients.clear()
}

export interface Received {
  topic: string
  payload: string
  packet: mqtt.IPublishPacket
}

export function collect(c: MqttClient): Received[] {
  const out: Received[] = []
  c.on('message', (topic, payload, packet) => out.push({ topic, payload: payload.toString(), packet }))
  return out
}

/** Polls `cond` until true or the timeout (for conditions no event announces). */
export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

export async function metric(w: Worker, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(w.metricsUrl)).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

/** A raw TCP client that decodes what the broker sends (for bad-input tests). */
export class RawClient {
  readonly packets: Packet[] = []
  readonly closed: Promise<void>
  #parser: ReturnType<typeof mqttPacket.parser>
  private constructor(readonly socket: net.Socket, version: number) {
    this.#parser = mqttPacket.parser({ protocolVersion: version })
    this.#parser.on('packet', (p) => this.packets.push(p))
    socket.on('data', (d) => this.#parser.parse(d))
    socket.on('error', () => undefined)
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }
  static open(w: Worker, version = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(w.port, '127.0.0.1', () => resolve(new RawClient(s, version)))
      s.once('error', reject)
    })
  }
  send(p: Packet | Buffer, version = 4): void {
    this.socket.write(Buffer.isBuffer(p) ? p : mqttPacket.generate(p, { protocolVersion: version }))
  }
  async next(cmd: string, timeoutMs = 10_000): Promise<Packet> {
    await waitFor(() => this.packets.some((p) => p.cmd === cmd), timeoutMs, `packet ${cmd}`)
    const i = this.packets.findIndex((p) => p.cmd === cmd)
    return this.packets.splice(i, 1)[0]!
  }
  async connect(clientId: string, version = 4, extra: Record<string, unknown> = {}): Promise<Packet> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version as 4, clientId, clean: true, keepalive: 0, ...extra } as Packet, version)
    return this.next('connack')
  }
  destroy(): void {
    this.socket.destroy()
  }
}

// MQTT.js clients for the cases that a real client library expresses well. Every client is
// tracked and ended by `closeClients()`; automatic reconnects are off so a test sees exactly
// what the broker did.

import mqtt, { type IClientOptions, type MqttClient, type IPublishPacket, type IConnackPacket } from 'mqtt'
import { randomBytes } from 'node:crypto'
import type { Target } from './target.js'

export interface Received {
  topic: string
  payload: string
  qos: number
  retain: boolean
  dup: boolean
  properties: NonNullable<IPublishPacket['properties']>
}

/** Items pushed by events, awaited by tests. */
export class Inbox<T> {
  readonly items: T[] = []
  #waiters: (() => void)[] = []

  push(item: T): void {
    this.items.push(item)
    for (const w of this.#waiters.splice(0)) w()
  }

  /** Resolves with all items once `pred(items)` holds; rejects with what arrived on timeout. */
  async until(pred: (items: T[]) => boolean, timeoutMs = 10000, what = 'condition'): Promise<T[]> {
    const deadline = Date.now() + timeoutMs
    while (!pred(this.items)) {
      const ms = deadline - Date.now()
      if (ms <= 0) throw new Error(`timed out waiting for ${what}; have ${JSON.stringify(this.items)}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms)
        this.#waiters.push(() => (clearTimeout(t), resolve()))
      })
    }
    return this.items
  }

  count(n: number, timeoutMs?: number): Promise<T[]> {
    return this.until((items) => items.length >= n, timeoutMs, `${n} items`)
  }

  /** The first item matching `pred`, waiting for it if needed. */
  async find(pred: (item: T) => boolean, timeoutMs?: number, what = 'matching item'): Promise<T> {
    await this.until((items) => items.some(pred), timeoutMs, what)
    return this.items.find(pred)!
  }

  clear(): void {
    this.items.length = 0
  }
}

export interface TestClient {
  client: MqttClient
  connack: IConnackPacket
  messages: Inbox<Received>
  /** DISCONNECT packets sent by the broker (5.0) */
  disconnects: Inbox<{ reasonCode: number }>
  closed: Promise<void>
}

const clients = new Set<MqttClient>()

let counter = 0
/** A name unique to this process and test run, usable as a client ID or topic level. */
export function uniq(label: string): string {
  return `${label}-${process.pid}-${++counter}-${randomBytes(3).toString('hex')}`
}

export async function connectClient(target: Target, opts: IClientOptions = {}): Promise<TestClient> {
  const client = mqtt.connect({
    host: target.host,
    port: target.port,
    protocol: 'mqtt',
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 15000,
    clientId: opts.clientId ?? uniq('c'),
    ...opts,
  })
  clients.add(client)
  const messages = new Inbox<Received>()
  const disconnects = new Inbox<{ reasonCode: number }>()
  // Recorded as they come off the wire: MQTT.js emits 'message' for QoS 2 only after its PUBREL
  // round trip, which would reorder messages of different QoS relative to the broker's order.
  client.on('packetreceive', (packet) => {
    if (packet.cmd !== 'publish') return
    messages.push({
      topic: packet.topic,
      payload: packet.payload.toString(),
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      properties: packet.properties ?? {},
    })
  })
  client.on('disconnect', (packet) => disconnects.push({ reasonCode: packet.reasonCode ?? 0 }))
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
    client.once('close', () => reject(new Error('closed before CONNACK')))
  })
  client.on('error', () => {}) // later protocol errors are asserted through disconnects/closed
  return { client, connack, messages, disconnects, closed }
}

export async function closeClients(): Promise<void> {
  await Promise.all(
    [...clients].map((c) => new Promise<void>((resolve) => c.end(true, {}, () => resolve()))),
  )
  clients.clear()
}

/** Ends a client gracefully (DISCONNECT) and waits until it is closed. */
export function endClient(c: TestClient, packet: Parameters<MqttClient['end']>[1] = {}): Promise<void> {
  return new Promise((resolve) => c.client.end(false, packet, () => resolve()))
}

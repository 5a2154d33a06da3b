// A minimal raw MQTT client for router tests: fast enough for thousands of connects, and able to
// send exactly the bytes a test wants (garbage, partial packets).

import net from 'node:net'
import mqtt from 'mqtt-packet'

export interface RawConn {
  socket: net.Socket
  connack: mqtt.IConnackPacket
  /** packets received after CONNACK */
  packets: mqtt.Packet[]
  next(cmd: string, timeoutMs?: number): Promise<mqtt.Packet>
  close(): Promise<void>
}

export function connectPacket(clientId: string, protocolVersion: 3 | 4 | 5 = 4, extra: Partial<mqtt.IConnectPacket> = {}): Buffer {
  return mqtt.generate({
    cmd: 'connect',
    protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion,
    clientId,
    clean: true,
    keepalive: 60,
    ...extra,
  } as mqtt.IConnectPacket)
}

export function rawConnect(port: number, clientId: string, protocolVersion: 3 | 4 | 5 = 4, extra: Partial<mqtt.IConnectPacket> = {}, timeoutMs = 15000): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const parser = mqtt.parser({ protocolVersion })
    const packets: mqtt.Packet[] = []
    const waiters: { cmd: string; resolve: (p: mqtt.Packet) => void }[] = []
    let connack: mqtt.IConnackPacket | undefined
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no CONNACK for ${clientId} within ${timeoutMs} ms`))
    }, timeoutMs)
    const closed = new Promise<void>((r) => socket.once('close', () => r()))
    parser.on('packet', (p: mqtt.Packet) => {
      if (!connack && p.cmd === 'connack') {
        connack = p as mqtt.IConnackPacket
        clearTimeout(timer)
        resolve(conn)
        return
      }
      const i = waiters.findIndex((w) => w.cmd === p.cmd)
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve(p)
      else packets.push(p)
    })
    socket.on('data', (d: Buffer) => parser.parse(d))
    socket.on('error', () => {})
    socket.once('close', () => {
      clearTimeout(timer)
      if (!connack) reject(new Error(`connection closed before CONNACK for ${clientId}`))
    })
    socket.write(connectPacket(clientId, protocolVersion, extra))
    const conn: RawConn = {
      socket,
      get connack() {
        return connack!
      },
      packets,
      next(cmd, ms = 10000) {
        const i = packets.findIndex((p) => p.cmd === cmd)
        if (i >= 0) return Promise.resolve(packets.splice(i, 1)[0]!)
        return new Promise((res, rej) => {
          const t = setTimeout(() => rej(new Error(`no ${cmd} within ${ms} ms`)), ms)
          waiters.push({ cmd, resolve: (p) => (clearTimeout(t), res(p)) })
        })
      },
      async close() {
        if (!socket.destroyed) socket.end(mqtt.generate({ cmd: 'disconnect' } as mqtt.IDisconnectPacket))
        await closed
      },
    }
  })
}

/** Connects, and resolves when the server closes the connection (rejects if it stays open). */
export function expectClosedByServer(socket: net.Socket, timeoutMs = 20000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve()
    const t = setTimeout(() => reject(new Error('server did not close the connection')), timeoutMs)
    socket.once('close', () => {
      clearTimeout(t)
      resolve()
    })
  })
}

export function rawSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s))
    s.once('error', reject)
  })
}

/** Reads a Prometheus text exposition into `name{labels}` -> value. */
export async function scrape(hostPort: string): Promise<Map<string, number>> {
  const res = await fetch(`http://${hostPort}/metrics`)
  const text = await res.text()
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

/** Sum of all samples of `name` whose label text contains every `labels` fragment. */
export function metric(m: Map<string, number>, name: string, ...labels: string[]): number {
  let sum = 0
  for (const [k, v] of m) {
    if (k !== name && !k.startsWith(name + '{')) continue
    if (labels.every((l) => k.includes(l))) sum += v
  }
  return sum
}

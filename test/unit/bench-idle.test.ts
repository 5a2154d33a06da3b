import net from 'node:net'
import mqtt from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runIdle, sourceAddressFor } from '../../bench/gen/idle.js'
import { MqttConn } from '../../bench/gen/mqtt-conn.js'

describe('bench idle connections', () => {
  it('uses the default source below 10,000 connections and spreads over 127.0.0.2-9 above', () => {
    expect(sourceAddressFor(0)).toBeUndefined()
    expect(sourceAddressFor(9_999)).toBeUndefined()
    const above = new Set(Array.from({ length: 1000 }, (_, i) => sourceAddressFor(10_000 + i)))
    expect([...above].sort()).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9'])
  })

  describe('against a silent server', () => {
    let server: net.Server
    let port: number
    const peers: string[] = []
    const sockets: net.Socket[] = []
    beforeAll(async () => {
      // accepts TCP, never answers MQTT: the generator must give up, and must use the source address
      server = net.createServer((s) => {
        peers.push(s.remoteAddress ?? '')
        sockets.push(s)
        s.on('error', () => {})
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
      port = (server.address() as net.AddressInfo).port
    })
    afterAll(() => {
      for (const s of sockets) s.destroy()
      return new Promise<void>((r) => server.close(() => r()))
    })

    it('connects from another loopback source address and times out waiting for CONNACK', async () => {
      const c = await MqttConn.open({ host: '127.0.0.1', port, localAddress: sourceAddressFor(10_003) }, 4)
      const reply = c.next('connack', 200)
      c.socket.write(Buffer.from([0x10, 0x00])) // any bytes; the server ignores them
      await expect(reply).rejects.toThrow(/no CONNACK within 200 ms/)
      c.socket.destroy()
      expect(peers).toContain('127.0.0.5')
    })
  })

  it('makes the warm-up connects between the memory pass and the CPU pass, and counts only its own', async () => {
    // answers every CONNECT with CONNACK; counts connections
    let accepted = 0
    const server = net.createServer((sock) => {
      accepted++
      const parser = mqtt.parser({ protocolVersion: 4 })
      parser.on('packet', (p) => {
        if (p.cmd === 'connect') sock.write(mqtt.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }))
      })
      sock.on('data', (d) => parser.parse(d))
      sock.on('error', () => {})
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as net.AddressInfo).port
    try {
      const passes: number[] = []
      const r = await runIdle(
        { name: 'idle', count: 20, connectRate: 2000, protocol: 4, settleMs: 0, warmCpu: true },
        { placement: { endpoint: () => ({ host: '127.0.0.1', port }) }, clientIdPrefix: 'warm-test', sampleCpu: () => (passes.push(accepted), {}), warmConnects: 30 },
      )
      expect(r.connected).toBe(20)
      expect(r.failed).toBe(0)
      expect(accepted).toBe(20 + 30 + 20)
      // CPU is sampled around each pass: [before 1st, after 1st, before 2nd, after 2nd]; the
      // warm-up connects fall between the passes, outside both windows
      expect(passes).toEqual([0, 20, 50, 70])
    } finally {
      await new Promise<void>((r) => server.close(() => r()))
    }
  })
})

// The HTTP/2 receive window of peer links, seen from the other end of a real socket: what a
// worker's gRPC server advertises (grpc-server.ts) and what the dialing side's channel
// advertises (peer-link.ts CLIENT_OPTIONS).

import http2 from 'node:http2'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { addPeerService, startGrpcServer, type GrpcServerHandle } from '../../src/cluster/grpc-server.js'
import { PEER_WINDOW_BYTES } from '../../src/cluster/limits.js'
import { CLIENT_OPTIONS } from '../../src/cluster/peer-link.js'
import { ringmqGrpc } from '../../src/cluster/proto.js'

const cleanup: (() => void | Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c()
})

/** Resolves when `cond` holds (polled every 10 ms, for at most 2 s). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
  if (!cond()) throw new Error(`timed out waiting for ${what}`)
}

describe('peer link HTTP/2 receive window', () => {
  it('a worker gRPC server advertises it per stream and opens the connection window to it', async () => {
    const plain = http2.createServer
    const server: GrpcServerHandle = await startGrpcServer({ host: '127.0.0.1', port: 0 }, (s) => addPeerService(s, (call) => call.end()))
    cleanup.push(() => server.close(0))
    // the wrapper was only in place for the bind
    expect(http2.createServer).toBe(plain)
    const session = http2.connect(`http://127.0.0.1:${server.address.port}`)
    cleanup.push(() => void session.destroy())
    const [settings] = (await once(session, 'remoteSettings')) as [http2.Settings]
    expect(settings.initialWindowSize).toBe(PEER_WINDOW_BYTES)
    await until(() => session.state.remoteWindowSize === PEER_WINDOW_BYTES, 'the connection window')
  })

  it('the dialing side advertises it too', async () => {
    const seen: http2.Settings[] = []
    const raw = http2.createServer()
    raw.on('session', (s) => s.on('remoteSettings', (settings) => seen.push(settings)))
    raw.listen(0, '127.0.0.1')
    await once(raw, 'listening')
    cleanup.push(() => void raw.close())
    const client = new (ringmqGrpc().Peer)(`127.0.0.1:${(raw.address() as AddressInfo).port}`, grpc.credentials.createInsecure(), CLIENT_OPTIONS)
    cleanup.push(() => client.close())
    client.waitForReady(Date.now() + 5000, () => undefined)
    await until(() => seen.length > 0, "the client's settings")
    expect(seen[0]!.initialWindowSize).toBe(PEER_WINDOW_BYTES)
  })
})

// Reads the PROXY protocol v2 header a router sends before the client's bytes, so that logs
// and limits see the device's address instead of the router's.

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { parseProxyV2 } from '../src/mqtt/proxy-protocol.js'

export interface ProxiedStart {
  /** the client's address as the router saw it, host:port */
  remote: string
  /** bytes after the header (the start of the MQTT stream) */
  rest: Buffer
}

const MAX_HEADER = 536

/** Resolves with the parsed header, or null when the bytes are not a valid header in time. */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedStart | null> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0)
    const done = (r: ProxiedStart | null): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.pause()
      resolve(r)
    }
    const onClose = (): void => done(null)
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      let res: ReturnType<typeof parseProxyV2>
      try {
        res = parseProxyV2(buf)
      } catch {
        return done(null)
      }
      if (res === null) {
        if (buf.length > MAX_HEADER) done(null)
        return
      }
      const src = res.source
      const remote = src ? `${src.address}:${src.port}` : `${socket.remoteAddress}:${socket.remotePort}`
      // the socket stays paused until the caller has attached its own reader
      done({ remote, rest: buf.subarray(res.length) })
    }
    const timer = setTimeout(() => done(null), timeoutMs)
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}

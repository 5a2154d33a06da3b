// Refusing a connection over --max-connections politely: instead of closing at accept, read
// just enough of the first packet to learn the protocol level, answer CONNACK "Quota exceeded"
// (5.0, 0x97) or "Server unavailable" (3.1/3.1.1, 0x03) and close [MQTT-3.2.2-6]. Anything
// else (not a CONNECT, no CONNECT within the deadline, the socket closing) is simply closed.
// The caller bounds how many sockets wait here at once; above that it closes at accept.

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'

const CONNACK_V5_QUOTA_EXCEEDED = Buffer.from([0x20, 3, 0x00, 0x97, 0x00])
const CONNACK_V4_SERVER_UNAVAILABLE = Buffer.from([0x20, 2, 0x00, 0x03])
/** fixed header (<= 5) + protocol name length and "MQIsdp" + level */
const MAX_PREFIX = 5 + 2 + 6 + 1

/** Protocol level of a CONNECT prefix; null = need more bytes; 0 = not a CONNECT. */
export function connectLevel(buf: Buffer): number | null {
  if (buf.length < 1) return null
  if (buf[0] !== 0x10) return 0
  let i = 1
  for (;;) {
    if (i >= buf.length) return null
    if (i > 4) return 0
    if ((buf[i++]! & 0x80) === 0) break
  }
  if (buf.length < i + 2) return null
  const nameLen = buf.readUInt16BE(i)
  if (nameLen !== 4 && nameLen !== 6) return 0
  const at = i + 2 + nameLen
  if (buf.length <= at) return null
  return buf[at]!
}

/** Answers the first CONNECT on `socket` with a refusing CONNACK and closes; calls `done` once. */
export function refuseWithConnack(socket: Socket, timeoutMs: number, done: (answered: boolean) => void): void {
  let buf: Buffer = Buffer.alloc(0)
  let finished = false
  const finish = (answered: boolean): void => {
    if (finished) return
    finished = true
    clearTimeout(timer)
    socket.off('data', onData)
    if (!answered) socket.destroy()
    done(answered)
  }
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]).subarray(0, MAX_PREFIX)
    const level = connectLevel(buf)
    if (level === null) return
    if (level === 0) return finish(false)
    socket.end(level === 5 ? CONNACK_V5_QUOTA_EXCEEDED : CONNACK_V4_SERVER_UNAVAILABLE)
    // do not wait for a slow or absent peer to finish the TCP close
    socket.destroySoon()
    finish(true)
  }
  const timer = setTimeout(() => finish(false), timeoutMs)
  socket.on('data', onData)
  socket.once('close', () => finish(false))
  socket.on('error', () => finish(false))
}

// PROXY protocol v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt), TCP over IPv4/IPv6 only:
// the router sends it before the client's bytes so that the worker sees the device's address.
//
//   12 bytes  signature \r\n\r\n\0\r\nQUIT\n
//    1 byte   0x21 = version 2, command PROXY (0x20 = LOCAL: no addresses, e.g. health checks)
//    1 byte   family/transport: 0x11 TCP/IPv4, 0x21 TCP/IPv6 (others: addresses ignored)
//    2 bytes  length of what follows (addresses, then optional TLVs, which are skipped)
//   IPv4: src 4, dst 4, src port 2, dst port 2 | IPv6: src 16, dst 16, src port 2, dst port 2

import { Buffer } from 'node:buffer'
import net from 'node:net'
import { RingmqError } from '../errors.js'

export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const HEADER = 16
/** No sane header is longer: addresses (36) plus a few TLVs; refuse to buffer more. */
export const PROXY_V2_MAX_LENGTH = 536

export interface ProxyAddress {
  address: string
  port: number
}

export interface ProxyV2Header {
  /** bytes taken by the header; the MQTT stream starts after them */
  length: number
  /** the client's address; null for LOCAL or non-TCP families */
  source: ProxyAddress | null
  destination: ProxyAddress | null
}

export const errProxy = (msg: string) => new RingmqError('ERR_PROXY_PROTOCOL', msg)

/**
 * Parses a PROXY v2 header at the start of `buf`: the header, null when more bytes are needed,
 * or throws ERR_PROXY_PROTOCOL when the bytes cannot be one.
 */
export function parseProxyV2(buf: Buffer): ProxyV2Header | null {
  const sig = Math.min(buf.length, PROXY_V2_SIGNATURE.length)
  for (let i = 0; i < sig; i++) if (buf[i] !== PROXY_V2_SIGNATURE[i]) throw errProxy('missing PROXY protocol v2 signature')
  if (buf.length < HEADER) return null
  const verCmd = buf[12]!
  if (verCmd >> 4 !== 2) throw errProxy(`unsupported PROXY protocol version ${verCmd >> 4}`)
  const cmd = verCmd & 0x0f
  if (cmd > 1) throw errProxy(`unknown PROXY command ${cmd}`)
  const fam = buf[13]!
  const len = buf.readUInt16BE(14)
  if (HEADER + len > PROXY_V2_MAX_LENGTH) throw errProxy(`PROXY header of ${HEADER + len} bytes is too long`)
  if (buf.length < HEADER + len) return null
  const length = HEADER + len
  if (cmd === 0) return { length, source: null, destination: null }
  if (fam === 0x11) {
    if (len < 12) throw errProxy('PROXY IPv4 address block too short')
    return {
      length,
      source: { address: ipv4(buf, 16), port: buf.readUInt16BE(24) },
      destination: { address: ipv4(buf, 20), port: buf.readUInt16BE(26) },
    }
  }
  if (fam === 0x21) {
    if (len < 36) throw errProxy('PROXY IPv6 address block too short')
    return {
      length,
      source: { address: ipv6(buf, 16), port: buf.readUInt16BE(48) },
      destination: { address: ipv6(buf, 32), port: buf.readUInt16BE(50) },
    }
  }
  // UNSPEC, UDP or UNIX: [the receiver] must use the real connection endpoints
  return { length, source: null, destination: null }
}

/** The header announcing a TCP connection from `source` to `destination` (both IPv4 or mixed -> IPv6). */
export function encodeProxyV2(source: ProxyAddress, destination: ProxyAddress): Buffer {
  const s4 = toIpv4(source.address)
  const d4 = toIpv4(destination.address)
  if (s4 && d4) {
    const out = Buffer.allocUnsafe(HEADER + 12)
    PROXY_V2_SIGNATURE.copy(out, 0)
    out[12] = 0x21
    out[13] = 0x11
    out.writeUInt16BE(12, 14)
    writeIpv4(out, 16, s4)
    writeIpv4(out, 20, d4)
    out.writeUInt16BE(source.port, 24)
    out.writeUInt16BE(destination.port, 26)
    return out
  }
  const out = Buffer.allocUnsafe(HEADER + 36)
  PROXY_V2_SIGNATURE.copy(out, 0)
  out[12] = 0x21
  out[13] = 0x21
  out.writeUInt16BE(36, 14)
  writeIpv6(out, 16, source.address)
  writeIpv6(out, 32, destination.address)
  out.writeUInt16BE(source.port, 48)
  out.writeUInt16BE(destination.port, 50)
  return out
}

/** The LOCAL header (no addresses): "this connection is the proxy's own". */
export function encodeProxyV2Local(): Buffer {
  const out = Buffer.alloc(HEADER)
  PROXY_V2_SIGNATURE.copy(out, 0)
  out[12] = 0x20
  return out
}

function ipv4(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`
}

function ipv6(buf: Buffer, at: number): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(at + i).toString(16))
  // IPv4-mapped addresses are shown as such: ::ffff:a.b.c.d
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return `::ffff:${ipv4(buf, at + 12)}`
  return compressIpv6(groups)
}

function compressIpv6(groups: string[]): string {
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j === i ? i + 1 : j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

/** IPv4 dotted quad of an IPv4 or IPv4-mapped IPv6 address, else undefined. */
function toIpv4(address: string): string | undefined {
  if (net.isIPv4(address)) return address
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return m ? m[1] : undefined
}

function writeIpv4(out: Buffer, at: number, address: string): void {
  const parts = address.split('.')
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i])
}

function writeIpv6(out: Buffer, at: number, address: string): void {
  const v4 = toIpv4(address)
  if (v4) {
    out.fill(0, at, at + 10)
    out[at + 10] = 0xff
    out[at + 11] = 0xff
    writeIpv4(out, at + 12, v4)
    return
  }
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t]
  for (let i = 0; i < 8; i++) out.writeUInt16BE(parseInt(groups[i] ?? '0', 16) || 0, at + i * 2)
}

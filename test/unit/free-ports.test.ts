// freePorts (bench/targets/server-process.ts, also used by the integration tests): distinct
// ports below the kernel's ephemeral range, free when returned.

import fs from 'node:fs'
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { freePorts } from '../../bench/targets/server-process.js'

describe('freePorts', () => {
  it('returns distinct ports below the ephemeral range that a server can bind', async () => {
    const ports = await freePorts(8)
    expect(new Set(ports).size).toBe(8)
    const range = fs.existsSync('/proc/sys/net/ipv4/ip_local_port_range') ? fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8') : '32768'
    const ephemeralLow = Number(range.trim().split(/\s+/)[0])
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(10_000)
      expect(p).toBeLessThan(ephemeralLow)
      await new Promise<void>((resolve, reject) => {
        const s = net.createServer()
        s.once('error', reject)
        s.listen(p, '127.0.0.1', () => s.close(() => resolve()))
      })
    }
  })
})

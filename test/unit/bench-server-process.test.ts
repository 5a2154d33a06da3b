// bench/targets/server-process.ts: what the bench reports when a server process dies.

import { describe, expect, it } from 'vitest'
import { startServer } from '../../bench/targets/server-process.js'

const ready = 'console.log(JSON.stringify({ msg: "ready" }))'

describe('server process exit reason', () => {
  it('names the exit code and the error line of a crashing Node server, not the version line under its stack', async () => {
    const p = await startServer({ name: 'crash', cmd: process.execPath, args: ['-e', `${ready}; setTimeout(() => { throw new RangeError('Maximum call stack size exceeded') }, 20)`], readyLine: true })
    expect(await p.exitReason(10_000)).toBe('exit code 1: RangeError: Maximum call stack size exceeded')
  })

  it('names a signal, and is null while the process runs', async () => {
    const p = await startServer({ name: 'sleeper', cmd: process.execPath, args: ['-e', `${ready}; setInterval(() => {}, 1000)`], readyLine: true })
    expect(await p.exitReason(50)).toBeNull()
    await p.stop()
    expect(await p.exitReason(10_000)).toMatch(/^signal SIGTERM(:|$)/)
  })
})

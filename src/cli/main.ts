#!/usr/bin/env node
// `ringmq <command>`: one binary for every role. Each command lives in its own module and is
// loaded on demand so that a router never loads LMDB and a ctl call starts fast.

import { RingmqError } from '../errors.js'

const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<void> }>> = {
  worker: () => import('./worker.js'),
  router: () => import('./router.js'),
  dev: () => import('./dev.js'),
  ctl: () => import('./ctl.js'),
}

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2)
  const load = name ? commands[name] : undefined
  if (!load) {
    process.stderr.write(`usage: ringmq <${Object.keys(commands).join('|')}> [flags]  (--help on each)\n`)
    process.exitCode = name === undefined || name === '--help' ? 0 : 2
    return
  }
  const mod = await load()
  await mod.run(rest)
}

main().catch((err: unknown) => {
  if (err instanceof RingmqError) {
    process.stderr.write(`ringmq: ${err.code}: ${err.message}\n`)
    process.exit(2)
  }
  process.stderr.write(`ringmq: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})

// Command-line flags with environment fallbacks, read once in each command's entry point.
// Precedence: defaults -> RINGMQ_<FLAG> environment -> flags. The result is frozen.

import { parseArgs } from 'node:util'
import { errConfig } from '../errors.js'

export type FlagType = 'string' | 'number' | 'boolean'

export interface FlagSpec {
  type: FlagType
  default?: string | number | boolean
  help: string
}

export type FlagSpecs = Record<string, FlagSpec>

type ValueOf<S extends FlagSpec> = S['type'] extends 'number' ? number : S['type'] extends 'boolean' ? boolean : string

export type Flags<S extends FlagSpecs> = { readonly [K in keyof S]: S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined }

export function envName(flag: string): string {
  return 'RINGMQ_' + flag.replace(/-/g, '_').toUpperCase()
}

export function parseFlags<S extends FlagSpecs>(
  argv: string[],
  specs: S,
  env: NodeJS.ProcessEnv = process.env,
): { flags: Flags<S>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean' }> = {}
  for (const [name, spec] of Object.entries(specs)) options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string' }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (err) {
    throw errConfig((err as Error).message)
  }
  const out: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(specs)) {
    let raw: unknown = parsed.values[name]
    if (raw === undefined && env[envName(name)] !== undefined) {
      const e = env[envName(name)]!
      raw = spec.type === 'boolean' ? e === '1' || e === 'true' : e
    }
    if (raw === undefined) raw = spec.default
    if (raw !== undefined && spec.type === 'number') {
      const n = Number(raw)
      if (!Number.isFinite(n)) throw errConfig(`--${name}: expected a number, got ${String(raw)}`)
      raw = n
    }
    out[name] = raw
  }
  return { flags: Object.freeze(out) as Flags<S>, positionals: parsed.positionals }
}

export function usage(command: string, specs: FlagSpecs): string {
  const lines = [`usage: ringmq ${command} [flags]`, '']
  for (const [name, spec] of Object.entries(specs)) {
    const def = spec.default === undefined ? '' : ` (default ${String(spec.default)})`
    lines.push(`  --${name.padEnd(22)} ${spec.help}${def}  [${envName(name)}]`)
  }
  return lines.join('\n')
}

export interface HostPort {
  host: string
  port: number
}

/** Parses `host:port`, `:port` (all interfaces) or `[v6]:port`. */
export function parseHostPort(value: string, defaultHost = '0.0.0.0'): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim())
  if (!m) throw errConfig(`bad address "${value}": expected host:port`)
  const port = Number(m[3])
  if (port > 65535) throw errConfig(`bad port in "${value}"`)
  return { host: m[1] ?? (m[2] || defaultHost), port }
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`
}

// `ringmq ctl`: operator commands against any node's Admin service.
//
//   ringmq ctl --server HOST:PORT ring show
//   ringmq ctl --server HOST:PORT ring init --file ring.json     (ApplyRing, expected epoch 0)
//   ringmq ctl --server HOST:PORT ring plan --file next.json     (what would move; read-only)
//   ringmq ctl --server HOST:PORT status
//   ringmq ctl --server HOST:PORT locate CLIENT_ID
//
// Human tables by default, `--json` for scripts. Exit codes: 0 ok, 1 the node refused
// (e.g. compare-and-set lost), 2 usage/config error or the server is unreachable.

import { createAdminClient } from '../cluster/admin-client.js'
import type { PbStatusResponse } from '../cluster/proto-types.js'
import { parseFlags, usage } from '../config/flags.js'
import { errConfig } from '../errors.js'
import { formatPlan, plan } from '../ring/plan.js'
import { loadRingSpecFile, type RingSpec } from '../ring/spec.js'

const FLAGS = {
  server: { type: 'string', default: '127.0.0.1:7000', help: 'Admin address of any node (router --admin or worker --peer)' },
  json: { type: 'boolean', default: false, help: 'print JSON instead of tables' },
  file: { type: 'string', help: 'ring spec file (ring init, ring plan)' },
  'expected-epoch': { type: 'number', default: 0, help: 'ring init: epoch the node must have now (compare-and-set)' },
  timeout: { type: 'number', default: 3000, help: 'RPC deadline in ms' },
  help: { type: 'boolean', default: false, help: 'show this help' },
} as const

const COMMANDS = 'ring show | ring init --file F | ring plan --file F | status | locate CLIENT_ID'

export async function run(argv: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(argv, FLAGS)
  if (flags.help || positionals.length === 0) {
    process.stdout.write(`${usage(`ctl <${COMMANDS}>`, FLAGS)}\n`)
    if (!flags.help) process.exitCode = 2
    return
  }
  const client = createAdminClient(flags.server, { timeoutMs: flags.timeout })
  const out = (human: string, json: unknown): void => {
    process.stdout.write(flags.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`)
  }
  try {
    const [cmd, sub] = positionals
    if (cmd === 'ring' && sub === 'show') {
      const spec = await client.getRing()
      out(formatRing(spec), spec)
    } else if (cmd === 'ring' && sub === 'init') {
      if (!flags.file) throw errConfig('ring init needs --file ring.json')
      const spec = loadRingSpecFile(flags.file)
      const res = await client.applyRing(spec, flags['expected-epoch'])
      out(res.ok ? `ring epoch ${res.epoch} applied on ${flags.server}` : `refused: ${res.error} (node epoch ${res.epoch})`, res)
      if (!res.ok) process.exitCode = 1
    } else if (cmd === 'ring' && sub === 'plan') {
      if (!flags.file) throw errConfig('ring plan needs --file next-ring.json')
      const to = loadRingSpecFile(flags.file)
      const p = plan(await client.getRing(), to)
      out(formatPlan(p), p)
    } else if (cmd === 'status') {
      const s = await client.status()
      out(formatStatus(s), { ...s, extra_json: undefined, extra: s.extra_json ? JSON.parse(s.extra_json) : undefined })
    } else if (cmd === 'locate' && sub) {
      const l = await client.locate(sub)
      const human = table(
        ['CLIENT', 'PREFS', 'OWNER', 'LIVE HERE', 'ASKED', 'EPOCH'],
        [[l.client_id, l.prefs.join(','), l.owner || '-', l.live_here ? 'yes' : 'no', l.node_id, String(l.epoch)]],
      )
      out(human, l)
    } else {
      throw errConfig(`unknown command "${positionals.join(' ')}"; expected ${COMMANDS}`)
    }
  } finally {
    client.close()
  }
}

function formatRing(spec: RingSpec): string {
  const head = `epoch ${spec.epoch}  replicas ${spec.replicas}  vnodes ${spec.vnodes}  workers ${spec.workers.length}`
  return `${head}\n${table(
    ['ID', 'MQTT', 'PEER', 'WEIGHT', 'STATE'],
    spec.workers.map((w) => [w.id, w.mqtt, w.peer, String(w.weight), w.state]),
  )}`
}

function formatStatus(s: PbStatusResponse): string {
  const head = [
    `node ${s.node_id} (${s.role})  epoch ${s.epoch}`,
    s.role === 'worker' ? `sessions ${s.sessions}  connections ${s.connections}  local routes ${s.local_routes}  retained ${s.retained}` : undefined,
  ].filter(Boolean)
  const peers = table(
    ['PEER', 'ADDRESS', 'STATE', 'LAST SEEN', 'ROUTES', 'QUEUED'],
    s.peers.map((p) => [p.id, p.address || '-', p.up ? 'up' : 'DOWN', p.up ? `${p.last_seen_ms} ms` : '-', String(p.routes), String(p.queued)]),
  )
  return `${head.join('\n')}\n${s.peers.length > 0 ? peers : '(no peers)'}`
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

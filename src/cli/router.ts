// `ringmq router`: the stateless edge. Reads the ring from --ring and/or --join nodes, routes every MQTT connection
// to the owner of its client ID, serves /metrics and (with --admin) the Admin gRPC service.

import fs from 'node:fs'
import { formatHostPort, parseFlags, parseHostPort, usage, type FlagSpecs } from '../config/flags.js'
import { errConfig } from '../errors.js'
import { createLogger } from '../log.js'
import { createRegistry, serveMetrics } from '../metrics/registry.js'
import { formatRingSpec, loadRingSpecFile } from '../ring/spec.js'
import { startRouter, type AdminPlug, type RouterHandle } from '../../router/router.js'
import { RingFollower } from '../../router/ring-follower.js'

export const routerFlags = {
  id: { type: 'string', default: 'router', help: 'name of this router in logs, metrics and Admin status' },
  mqtt: { type: 'string', default: '0.0.0.0:1883', help: 'MQTT listener host:port (devices connect here)' },
  admin: { type: 'string', help: 'Admin gRPC listener host:port' },
  metrics: { type: 'string', help: 'Prometheus /metrics listener host:port' },
  ring: { type: 'string', help: 'ring spec JSON file (kept up to date when a newer ring is adopted)' },
  join: { type: 'string', help: 'Admin addresses (workers\' --peer, other routers\' --admin) to learn the ring from, host:port,...' },
  'join-poll-ms': { type: 'number', default: 5000, help: 'how often to ask --join nodes for a newer ring' },
  'proxy-protocol': { type: 'boolean', default: false, help: 'send a PROXY protocol v2 header to workers (start workers with --proxy-protocol)' },
  'connect-timeout-ms': { type: 'number', default: 2000, help: 'timeout of one connect to a worker before trying the next' },
  'connect-deadline-ms': { type: 'number', default: 10000, help: 'a client must send its whole CONNECT within this time' },
  'max-connect-bytes': { type: 'number', default: 65536, help: 'largest CONNECT accepted' },
  'probe-interval-ms': { type: 'number', default: 2000, help: 'interval of liveness probes to workers' },
  'max-connections': { type: 'number', default: 100000, help: 'client connections at most (more are closed on accept); mind the open-file limit: 2 per connection' },
  help: { type: 'boolean', default: false, help: 'show this help' },
} satisfies FlagSpecs

export async function run(argv: string[]): Promise<void> {
  const { flags } = parseFlags(argv, routerFlags)
  if (flags.help) {
    process.stdout.write(usage('router', routerFlags) + '\n')
    return
  }
  const join = flags.join ? flags.join.split(',').map((s) => s.trim()).filter(Boolean) : []
  if (!flags.ring && join.length === 0) throw errConfig('--ring or --join is required')
  for (const f of ['connect-timeout-ms', 'connect-deadline-ms', 'max-connect-bytes', 'probe-interval-ms', 'join-poll-ms', 'max-connections'] as const) {
    if (!(flags[f] > 0)) throw errConfig(`--${f} must be > 0`)
  }
  for (const j of join) parseHostPort(j)
  const log = createLogger({ name: 'router', id: flags.id })
  const follower = join.length > 0 ? await RingFollower.create(join, log) : null
  let spec = flags.ring && fs.existsSync(flags.ring) ? loadRingSpecFile(flags.ring) : undefined
  if (flags.ring && !spec && !follower) spec = loadRingSpecFile(flags.ring) // throws the clear error
  if (follower) {
    const heard = spec ? await follower.fetch() : await follower.first(1000, 60_000)
    if (!heard && !spec) throw errConfig(`no --join node answered with a ring (${join.join(', ')})`)
    if (heard && (!spec || heard.epoch > spec.epoch)) {
      spec = heard
      if (flags.ring) fs.writeFileSync(flags.ring, formatRingSpec(heard))
    }
  }
  if (!spec) throw errConfig('no ring')
  const registry = createRegistry({ router: flags.id })
  const router = await startRouter(
    {
      id: flags.id,
      spec,
      ringFile: flags.ring,
      mqtt: parseHostPort(flags.mqtt),
      proxyProtocol: flags['proxy-protocol'],
      connectTimeoutMs: flags['connect-timeout-ms'],
      connectDeadlineMs: flags['connect-deadline-ms'],
      maxConnectBytes: flags['max-connect-bytes'],
      probeIntervalMs: flags['probe-interval-ms'],
      maxConnections: flags['max-connections'],
    },
    registry,
    log,
  )
  follower?.follow(flags['join-poll-ms'], () => router.membership.placement.spec.epoch, (s) => router.adoptRing(s))
  const metrics = flags.metrics ? await serveMetrics(registry, parseHostPort(flags.metrics)) : null
  const admin = flags.admin ? await startAdmin(router, parseHostPort(flags.admin)) : null
  const ready: Record<string, unknown> = { mqtt: formatHostPort(router.mqtt), epoch: spec.epoch, workers: spec.workers.length }
  if (admin) ready.admin = formatHostPort(admin.address)
  if (metrics) ready.metrics = formatHostPort(metrics.address)
  log.info('ready', ready)

  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info('stopping', { signal })
    follower?.close()
    await Promise.all([router.close(), admin?.close(), metrics?.close()])
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

/** The Admin service, loaded only when asked for so that a router without it never loads gRPC. */
async function startAdmin(router: RouterHandle, at: { host: string; port: number }): Promise<AdminPlug> {
  const { startAdminServer } = await import('../cluster/grpc-server.js')
  const m = router.membership
  const handle = await startAdminServer(at, {
    nodeId: router.id,
    role: 'router',
    getRing: () => m.placement.spec,
    applyRing: (spec, expected) => router.applyRing(spec, expected),
    status: () => ({
      nodeId: router.id,
      role: 'router',
      epoch: m.placement.spec.epoch,
      peers: [...m.liveness()].map((w) => ({ id: w.id, address: m.placement.worker(w.id)!.mqtt, up: w.up })),
      connections: router.edge.connections,
    }),
    locate: (clientId) => ({
      clientId,
      prefs: m.placement.prefs(clientId).map((w) => w.id),
      owner: m.placement.owner(clientId, m.isAlive)?.id,
      liveHere: false,
    }),
  })
  return { address: handle.address, close: () => handle.close() }
}

// `ringmq worker`: one broker process. Without --ring it is a standalone broker that owns every
// client; with --ring it serves only clients whose prefs include it.

import { parseFlags, parseHostPort, formatHostPort, usage, type FlagSpecs } from '../config/flags.js'
import { errConfig } from '../errors.js'
import { createLogger } from '../log.js'
import { createRegistry, serveMetrics } from '../metrics/registry.js'
import { loadRingSpecFile, type RingSpec } from '../ring/spec.js'
import { Placement } from '../ring/placement.js'
import { createGrpcFabric } from '../cluster/grpc-fabric.js'
import { openLmdbStore } from '../store/lmdb-store.js'
import { createBroker } from '../../worker/broker.js'
import { ringOwnership } from '../../worker/ownership.js'
import type { QueueOverflow } from '../mqtt/limits.js'

export const workerFlags = {
  id: { type: 'string', help: 'worker ID (stable; names the worker in the ring)' },
  mqtt: { type: 'string', default: '127.0.0.1:1884', help: 'MQTT listener host:port' },
  data: { type: 'string', help: 'directory of the LMDB environment' },
  metrics: { type: 'string', help: 'Prometheus /metrics listener host:port' },
  peer: { type: 'string', help: 'gRPC peer/admin listener host:port (cluster)' },
  ring: { type: 'string', help: 'ring spec JSON file; absent = standalone, owns every client' },
  join: { type: 'string', help: 'peers to learn the ring from, host:port,...' },
  'max-connections': { type: 'number', default: 100000, help: 'open connections at most' },
  'max-keepalive': { type: 'number', default: 65535, help: 'server maximum keepalive, seconds (sent as Server Keep Alive)' },
  'receive-maximum': { type: 'number', default: 1000, help: 'unacknowledged QoS 1/2 PUBLISHes per client' },
  'max-packet-size': { type: 'number', default: 1048576, help: 'largest accepted packet, bytes' },
  'max-queue': { type: 'number', default: 1000, help: 'queued messages per session' },
  'queue-overflow': { type: 'string', default: 'drop-oldest', help: 'drop-oldest | drop-new when a session queue is full' },
  'max-write-buffer': { type: 'number', default: 1048576, help: 'bytes buffered per client before QoS 0 is dropped' },
  'topic-alias-maximum': { type: 'number', default: 100, help: 'topic aliases a 5.0 client may use' },
  'connect-timeout-ms': { type: 'number', default: 10000, help: 'close connections without CONNECT after this' },
  'proxy-protocol': { type: 'boolean', default: false, help: 'expect a PROXY protocol v2 header (behind ringmq routers)' },
  'heartbeat-ms': { type: 'number', default: 1000, help: 'peer heartbeat interval' },
  'missed-beats': { type: 'number', default: 3, help: 'a silent peer is down after this many heartbeats' },
  replication: { type: 'string', default: 'async', help: 'async | sync (reserved: session replication is not built yet, no effect today)' },
  help: { type: 'boolean', default: false, help: 'show this help' },
} satisfies FlagSpecs

export async function run(argv: string[]): Promise<void> {
  const { flags } = parseFlags(argv, workerFlags)
  if (flags.help) {
    process.stdout.write(usage('worker', workerFlags) + '\n')
    return
  }
  if (!flags.id) throw errConfig('--id is required')
  if (!flags.data) throw errConfig('--data is required')
  const workerId = flags.id
  if (flags.replication !== 'async' && flags.replication !== 'sync') throw errConfig('--replication must be async or sync')
  const log = createLogger({ name: 'worker', id: flags.id })
  const mqttAt = parseHostPort(flags.mqtt)
  const metricsAt = flags.metrics ? parseHostPort(flags.metrics) : null

  const store = await openLmdbStore({ path: flags.data, log })
  const registry = createRegistry({ worker: flags.id })
  // The newest ring this node has seen wins: the file seeds it, a higher epoch adopted from
  // peers (and persisted in LMDB meta) survives restarts.
  let spec: RingSpec | null = null
  if (flags.ring) {
    const fileSpec = loadRingSpecFile(flags.ring)
    const stored = store.getMeta<RingSpec>('ring')
    spec = stored && stored.epoch > fileSpec.epoch ? stored : fileSpec
  }
  const ownership = spec ? ringOwnership(spec, flags.id) : null
  const broker = createBroker({
    id: flags.id,
    store,
    log,
    registry,
    ownership,
    proxyProtocol: flags['proxy-protocol'],
    limits: {
      maxConnections: flags['max-connections'],
      maxKeepalive: flags['max-keepalive'],
      receiveMaximum: flags['receive-maximum'],
      maxPacketSize: flags['max-packet-size'],
      maxQueue: flags['max-queue'],
      queueOverflow: flags['queue-overflow'] as QueueOverflow,
      maxWriteBuffer: flags['max-write-buffer'],
      topicAliasMaximum: flags['topic-alias-maximum'],
      connectTimeoutMs: flags['connect-timeout-ms'],
    },
  })
  let peerAddress: string | null = null
  if (spec && flags.peer) {
    let placement = new Placement(spec)
    const cluster = await createGrpcFabric({
      workerId,
      placement: () => placement,
      broker,
      listen: parseHostPort(flags.peer),
      log: log.child({ part: 'cluster' }),
      registry,
      heartbeatMs: flags['heartbeat-ms'],
      missedBeats: flags['missed-beats'],
      onRing: (next) => {
        placement = new Placement(next)
        broker.ownership = ringOwnership(next, workerId)
        void store.putMeta('ring', next)
        log.info('ring adopted', { epoch: next.epoch })
      },
      hlcStore: { load: () => store.getMeta<number>('hlc'), save: (hw) => void store.putMeta('hlc', hw) },
      describe: {
        sessions: () => broker.sessions.size,
        connections: () => broker.connections.size,
        isLive: (id) => broker.sessions.get(id)?.conn != null,
      },
    })
    broker.fabric = cluster.fabric
    peerAddress = formatHostPort(cluster.address)
  } else if (flags.peer) {
    log.warn('--peer ignored: no --ring given, running standalone')
  }
  const mqtt = await broker.listen(mqttAt)
  const metrics = metricsAt ? await serveMetrics(registry, metricsAt) : null
  const ready: Record<string, unknown> = { mqtt: formatHostPort(mqtt) }
  if (peerAddress) ready.peer = peerAddress
  if (metrics) ready.metrics = formatHostPort(metrics.address)
  log.info('ready', ready)

  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info('stopping', { signal })
    await broker.close()
    await broker.fabric.close()
    await metrics?.close()
    await store.close()
    log.info('stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

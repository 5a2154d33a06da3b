// The cost of one gRPC message on a Peer.Link stream (grpc-js, loopback), sender and receiver
// CPU per message, so that the forwarder's batching can be reasoned about:
//
//   npm run build && node dist/bench/grpc-cost.js [--rate 7000] [--bytes 3000] [--burst 10] [--seconds 3] [--no-send] [--ringmq-options]
//
// The sender writes `burst` PublishBatch frames every burst/rate seconds from a timer; --no-send
// runs the same timer loop without writing, to subtract the loop's own cost; --ringmq-options
// uses the channel and server options of ringmq's peer links instead of grpc-js defaults. Both processes
// are pinned to CPU 0 when taskset exists. CPU from /proc/PID/task/*/schedstat.

import { fork, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import { SERVER_OPTIONS } from '../src/cluster/grpc-server.js'
import { CLIENT_OPTIONS } from '../src/cluster/peer-link.js'
import { ringmqGrpc } from '../src/cluster/proto.js'
import type { PbPeerMessage } from '../src/cluster/proto-types.js'
import { cpuUs } from './proc/proc-stat.js'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '7000' },
    bytes: { type: 'string', default: '3000' },
    burst: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '3' },
    'no-send': { type: 'boolean', default: false },
    /** the channel and server options of ringmq's peer links (else grpc-js defaults) */
    'ringmq-options': { type: 'boolean', default: false },
  },
})

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function receiver(): void {
  const server = new grpc.Server(process.env.GRPC_COST_RINGMQ ? SERVER_OPTIONS : {})
  server.addService(ringmqGrpc().Peer.service, { Link: (call: grpc.ServerDuplexStream<PbPeerMessage, PbPeerMessage>) => call.on('data', () => undefined) })
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err
    process.send!({ port })
  })
  process.on('disconnect', () => process.exit(0))
}

async function sender(): Promise<void> {
  const rate = Number(values.rate)
  const burst = Number(values.burst)
  const total = rate * Number(values.seconds)
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, GRPC_COST_ROLE: 'receiver', ...(values['ringmq-options'] ? { GRPC_COST_RINGMQ: '1' } : {}) } })
  try {
    const { port } = await new Promise<{ port: number }>((r) => child.once('message', (m) => r(m as { port: number })))
    for (const pid of [child.pid!, process.pid]) spawnSync('taskset', ['-p', '-c', '0', String(pid)], { stdio: 'ignore' })
    const Peer = ringmqGrpc().Peer
    const client = new Peer(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), values['ringmq-options'] ? CLIENT_OPTIONS : {})
    const call = (client as unknown as { Link(): grpc.ClientDuplexStream<PbPeerMessage, PbPeerMessage> }).Link()
    const frame = { body: 'publish_batch', publish_batch: { batch_id: 1, messages: [], packed: Buffer.alloc(Number(values.bytes), 1) } } as unknown as PbPeerMessage
    const send = values['no-send'] ? (): void => undefined : (): void => void call.write(frame)
    // warm-up: JIT and HTTP/2 windows
    for (let i = 0; i < 2000; i++) {
      send()
      if (i % 50 === 0) await delay(5)
    }
    await delay(500)
    const c0 = cpuUs(process.pid)
    const r0 = cpuUs(child.pid!)
    const start = performance.now()
    for (let i = 0; i < total; i += burst) {
      const wait = start + (i * 1000) / rate - performance.now()
      if (wait > 0) await delay(wait)
      for (let k = 0; k < burst; k++) send()
    }
    await delay(300)
    const per = (us: number): string => (us / total).toFixed(1)
    console.log(`${total} frames of ${values.bytes} B at ${rate}/s in bursts of ${burst}${values['no-send'] ? ' (not sent)' : ''}: sender ${per(cpuUs(process.pid) - c0)} us/frame, receiver ${per(cpuUs(child.pid!) - r0)} us/frame`)
    call.on('error', () => undefined) // the receiver is killed next
  } finally {
    child.kill()
  }
  process.exit(0)
}

if (process.env.GRPC_COST_ROLE === 'receiver') receiver()
else await sender()

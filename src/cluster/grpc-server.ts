// gRPC server lifecycle: bind, serve, shut down. Services are added by `addPeerService` and
// `addAdminService`, kept apart so that a worker serves both on --peer and a router serves
// Admin alone on --admin.
//
// Server keepalive: peers ping every 10 s (see peer-link.ts); the server must permit pings
// at that rate, also without active calls, or grpc-js answers GOAWAY ENHANCE_YOUR_CALM.
// The server pings idle clients itself every 30 s so that a vanished router/ctl connection
// does not hold resources.

import http2 from 'node:http2'
import * as grpc from '@grpc/grpc-js'
import { MAX_FRAME_BYTES, PEER_WINDOW_BYTES } from './limits.js'
import type { HostPort } from '../config/flags.js'
import { formatHostPort } from '../config/flags.js'
import { addAdminService, type AdminHandlers } from './admin-service.js'
import { ringmqGrpc } from './proto.js'
import type { PbPeerMessage } from './proto-types.js'

export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  // publish batches are bounded by count and bytes in forwarder.ts; this is the hard cap
  'grpc.max_receive_message_length': MAX_FRAME_BYTES,
  'grpc.max_send_message_length': MAX_FRAME_BYTES,
  // channelz (grpc-js's introspection service, which ringmq does not serve) counts every
  // message of every call; our own metrics say what matters
  'grpc.enable_channelz': 0,
}

export interface GrpcServerHandle {
  server: grpc.Server
  address: HostPort
  /** Graceful shutdown, forced after `graceMs` (open Link streams would otherwise hold it). */
  close(graceMs?: number): Promise<void>
}

export async function startGrpcServer(at: HostPort, add: (server: grpc.Server) => void): Promise<GrpcServerHandle> {
  const server = new grpc.Server(SERVER_OPTIONS)
  add(server)
  const port = await withReceiveWindow(
    () =>
      new Promise<number>((resolve, reject) => {
        server.bindAsync(formatHostPort(at), grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)))
      }),
  )
  return {
    server,
    address: { host: at.host, port },
    close: (graceMs = 500) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), graceMs)
        server.tryShutdown(() => {
          clearTimeout(force)
          resolve()
        })
      }),
  }
}

/**
 * Runs `bind` with HTTP/2 servers created meanwhile given a PEER_WINDOW_BYTES receive window,
 * for each stream (SETTINGS_INITIAL_WINDOW_SIZE) and for the connection. grpc-js has an option
 * for this on its client side only (`grpc-node.flow_control_window`, peer-link.ts) and leaves
 * server sessions at HTTP/2's 64 KiB, with which every publish batch of tens of KB made the
 * receiver write a WINDOW_UPDATE and the sender read it and write the batch in pieces, and a
 * batch over 64 KiB waited a round trip per window. grpc-js makes its servers with Node's
 * `http2.createServer` when it binds; the wrapper is in place only until the bind is done
 * (counted, for binds that overlap), so HTTP/2 servers the process makes at other times are not
 * touched.
 */
async function withReceiveWindow<T>(bind: () => Promise<T>): Promise<T> {
  if (windowBinds++ === 0) {
    http2.createServer = ((options: http2.ServerOptions, onRequest?: () => void) => {
      // grpc-js passes its options object; anything else is not ours to change
      if (typeof options !== 'object' || options === null) return plainCreateServer(options)
      const created = plainCreateServer({ ...options, settings: { ...options.settings, initialWindowSize: PEER_WINDOW_BYTES } }, onRequest)
      created.on('session', (session) => session.setLocalWindowSize(PEER_WINDOW_BYTES))
      return created
    }) as typeof http2.createServer
  }
  try {
    return await bind()
  } finally {
    if (--windowBinds === 0) http2.createServer = plainCreateServer
  }
}

const plainCreateServer = http2.createServer
let windowBinds = 0

/** A router's Admin listener (--admin). */
export function startAdminServer(at: HostPort, handlers: AdminHandlers): Promise<GrpcServerHandle> {
  return startGrpcServer(at, (server) => addAdminService(server, handlers))
}

/** Serves Peer.Link: every incoming stream is handed to `onLink` (PeerLinks.accept). */
export function addPeerService(server: grpc.Server, onLink: (call: grpc.ServerDuplexStream<PbPeerMessage, PbPeerMessage>) => void): void {
  server.addService(ringmqGrpc().Peer.service, { Link: onLink })
}

/** A worker's --peer listener: Peer (when given) and Admin on one gRPC server. */
export function startPeerServer(
  at: HostPort,
  services: { peer?: (call: grpc.ServerDuplexStream<PbPeerMessage, PbPeerMessage>) => void; admin: AdminHandlers },
): Promise<GrpcServerHandle> {
  return startGrpcServer(at, (server) => {
    if (services.peer) addPeerService(server, services.peer)
    addAdminService(server, services.admin)
  })
}

// The Admin gRPC service (every node): ring get and compare-and-set, status, locate, health.
// `addAdminService(server, handlers)` only registers the service; the server's lifecycle
// belongs to grpc-server.ts. Handlers speak camelCase TypeScript; this file converts.

import * as grpc from '@grpc/grpc-js'
import { RingmqError } from '../errors.js'
import type { RingSpec } from '../ring/spec.js'
import { ringmqGrpc } from './proto.js'
import type {
  PbApplyRingRequest,
  PbApplyRingResponse,
  PbHealthResponse,
  PbLocateRequest,
  PbLocateResponse,
  PbRingSpec,
  PbStatusResponse,
} from './proto-types.js'
import { decodeRing, encodeRing } from './ring-codec.js'

export interface PeerStatusInfo {
  id: string
  address: string
  up: boolean
  /** ms since the last frame from the peer; undefined = never */
  lastSeenMs?: number
  routes?: number
  queued?: number
  /** who dialed the current link (diagnostics, not on the wire) */
  dialer?: string
}

export interface StatusInfo {
  nodeId: string
  role: 'worker' | 'router'
  epoch: number
  peers: PeerStatusInfo[]
  sessions?: number
  connections?: number
  localRoutes?: number
  retained?: number
  /** role-specific extras, shown by `ctl status --json` */
  extra?: Record<string, unknown>
}

export interface LocateInfo {
  clientId: string
  prefs: string[]
  /** first pref this node believes alive, undefined when none */
  owner?: string
  liveHere: boolean
}

export interface ApplyRingResult {
  ok: boolean
  epoch: number
  error?: string
}

export interface AdminHandlers {
  nodeId: string
  role: 'worker' | 'router'
  getRing(): RingSpec
  /** Compare-and-set: apply only if the current epoch is `expectedEpoch` and `spec.epoch` is higher. */
  applyRing(spec: RingSpec, expectedEpoch: number): ApplyRingResult | Promise<ApplyRingResult>
  status(): StatusInfo
  locate(clientId: string): LocateInfo
}

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>

/** Runs a handler and maps thrown errors to gRPC statuses (RingmqError code kept in details). */
function unary<Req, Res>(fn: (req: Req) => Res | Promise<Res>): Unary<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (err: Error) => {
          const code = err instanceof RingmqError && err.code === 'ERR_RING_INVALID' ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL
          callback({ code, details: err instanceof RingmqError ? `${err.code}: ${err.message}` : err.message })
        },
      )
  }
}

export function toPbStatus(s: StatusInfo): PbStatusResponse {
  return {
    node_id: s.nodeId,
    role: s.role,
    epoch: s.epoch,
    peers: s.peers.map((p) => ({
      id: p.id,
      address: p.address,
      up: p.up,
      last_seen_ms: p.lastSeenMs ?? 0,
      routes: p.routes ?? 0,
      queued: p.queued ?? 0,
    })),
    sessions: s.sessions ?? 0,
    connections: s.connections ?? 0,
    local_routes: s.localRoutes ?? 0,
    retained: s.retained ?? 0,
    extra_json: s.extra ? JSON.stringify(s.extra) : '',
  }
}

export function addAdminService(server: grpc.Server, h: AdminHandlers): void {
  const epoch = (): number => h.getRing().epoch
  server.addService(ringmqGrpc().Admin.service, {
    GetRing: unary<unknown, PbRingSpec>(() => encodeRing(h.getRing())),
    ApplyRing: unary<PbApplyRingRequest, PbApplyRingResponse>(async (req) => {
      if (!req.spec) return { ok: false, epoch: epoch(), error: 'no spec in request' }
      const r = await h.applyRing(decodeRing(req.spec), req.expected_epoch)
      return { ok: r.ok, epoch: r.epoch, error: r.error ?? '' }
    }),
    Status: unary<unknown, PbStatusResponse>(() => toPbStatus(h.status())),
    Locate: unary<PbLocateRequest, PbLocateResponse>((req) => {
      const l = h.locate(req.client_id)
      return { client_id: l.clientId, prefs: l.prefs, owner: l.owner ?? '', live_here: l.liveHere, node_id: h.nodeId, epoch: epoch() }
    }),
    Health: unary<unknown, PbHealthResponse>(() => ({ ok: true, node_id: h.nodeId, role: h.role, epoch: epoch() })),
  })
}

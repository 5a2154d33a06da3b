// Hand-written TypeScript mirror of proto/ringmq.proto as @grpc/proto-loader delivers it
// (keepCase, longs as Number, bytes as Buffer, defaults, oneofs -> `body` names the member).
// Outgoing objects may omit fields (proto3 defaults); incoming ones have every field set.

export interface PbRingWorker { id: string; mqtt: string; peer: string; weight: number; state: string }
export interface PbRingSpec { epoch: number; replicas: number; vnodes: number; workers: PbRingWorker[] }

export interface PbHlc { wall: number; logical: number }

export interface PbHello { worker_id: string; epoch: number; route_digest: string; retained_digest: string; protocol: number }
export interface PbHeartbeat { epoch: number; route_digest: string; retained_digest: string; time: number; route_seq: number }
export interface PbRoute { filter: string; group: string; count: number }
export interface PbRouteSnapshot { routes: PbRoute[]; seq: number; more: boolean }
export interface PbRouteDelta { seq: number; added: PbRoute[]; removed: PbRoute[] }
export interface PbRouteResyncRequest { reason: string }

export interface PbUserProperty { key: string; value: string }
export interface PbMessageProperties {
  has_payload_format_indicator: boolean
  payload_format_indicator: boolean
  has_content_type: boolean
  content_type: string
  has_response_topic: boolean
  response_topic: string
  has_correlation_data: boolean
  correlation_data: Buffer
  user_properties: PbUserProperty[]
}
export interface PbForwardedMessage {
  msg_id: number
  topic: string
  payload: Buffer
  qos: number
  retain: boolean
  properties: PbMessageProperties | null
  expires_at: number
  origin: string
  publisher_id: string
  groups: string[]
  normal: boolean
}
export interface PbPublishBatch { batch_id: number; messages: PbForwardedMessage[]; packed: Buffer }
export interface PbPublishAck { msg_ids: number[]; failed_ids: number[]; ok_ranges: Buffer }
export interface PbRetainedSet { topic: string; message: PbForwardedMessage | null; hlc: PbHlc | null; writer: string }
export interface PbRetainedStamp { topic: string; hlc: PbHlc | null; writer: string; tombstone: boolean }
export interface PbRetainedDigestRequest { stamps: PbRetainedStamp[] }
export interface PbRetainedCatchUp { sets: PbRetainedSet[]; more: boolean }
export interface PbSessionClaim { client_id: string; claim_id: number }
export interface PbSessionClaimAck { claim_id: number }
export interface PbRingRequest { epoch: number }
export interface PbRingUpdate { spec: PbRingSpec | null }

/** The closed set of frames on a Peer link: exactly one member set, named by `body`. */
export type PbPeerMessage =
  | { body: 'hello'; hello: PbHello }
  | { body: 'heartbeat'; heartbeat: PbHeartbeat }
  | { body: 'route_snapshot'; route_snapshot: PbRouteSnapshot }
  | { body: 'route_delta'; route_delta: PbRouteDelta }
  | { body: 'route_resync_request'; route_resync_request: PbRouteResyncRequest }
  | { body: 'publish_batch'; publish_batch: PbPublishBatch }
  | { body: 'publish_ack'; publish_ack: PbPublishAck }
  | { body: 'retained_set'; retained_set: PbRetainedSet }
  | { body: 'retained_digest_request'; retained_digest_request: PbRetainedDigestRequest }
  | { body: 'retained_catch_up'; retained_catch_up: PbRetainedCatchUp }
  | { body: 'session_claim'; session_claim: PbSessionClaim }
  | { body: 'session_claim_ack'; session_claim_ack: PbSessionClaimAck }
  | { body: 'ring_request'; ring_request: PbRingRequest }
  | { body: 'ring_update'; ring_update: PbRingUpdate }

export type PeerMessageKind = PbPeerMessage['body']

export interface PbApplyRingRequest { spec: PbRingSpec | null; expected_epoch: number }
export interface PbApplyRingResponse { ok: boolean; epoch: number; error: string }
export interface PbPeerStatus { id: string; address: string; up: boolean; last_seen_ms: number; routes: number; queued: number }
export interface PbStatusResponse {
  node_id: string
  role: string
  epoch: number
  peers: PbPeerStatus[]
  sessions: number
  connections: number
  local_routes: number
  retained: number
  extra_json: string
}
export interface PbLocateRequest { client_id: string }
export interface PbLocateResponse { client_id: string; prefs: string[]; owner: string; live_here: boolean; node_id: string; epoch: number }
export interface PbHealthResponse { ok: boolean; node_id: string; role: string; epoch: number }

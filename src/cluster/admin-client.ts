// A promise-based Admin client for `ringmq ctl` and routers. Every call has a deadline; an
// unreachable node fails with ERR_UNREACHABLE naming the address.

import * as grpc from '@grpc/grpc-js'
import { errUnreachable, RingmqError } from '../errors.js'
import type { RingSpec } from '../ring/spec.js'
import { CLIENT_OPTIONS } from './peer-link.js'
import { ringmqGrpc } from './proto.js'
import type { PbApplyRingResponse, PbHealthResponse, PbLocateResponse, PbRingSpec, PbStatusResponse } from './proto-types.js'
import { decodeRing, encodeRing } from './ring-codec.js'

export interface AdminClient {
  getRing(): Promise<RingSpec>
  applyRing(spec: RingSpec, expectedEpoch: number): Promise<PbApplyRingResponse>
  status(): Promise<PbStatusResponse>
  locate(clientId: string): Promise<PbLocateResponse>
  health(): Promise<PbHealthResponse>
  close(): void
}

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void
type RawClient = Record<string, (req: unknown, opts: grpc.CallOptions, cb: Callback<unknown>) => void> & grpc.Client

export function createAdminClient(address: string, opts: { timeoutMs?: number } = {}): AdminClient {
  const timeoutMs = opts.timeoutMs ?? 3000
  const client = new (ringmqGrpc().Admin)(address, grpc.credentials.createInsecure(), CLIENT_OPTIONS) as unknown as RawClient
  const call = <T>(method: string, req: unknown): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      client[method]!(req, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (!err) return resolve(res as T)
        if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
          reject(errUnreachable(`cannot reach ${address}: ${err.details || err.message}`))
        } else {
          reject(new RingmqError('ERR_ADMIN', `${address}: ${err.details || err.message}`))
        }
      })
    })
  return {
    getRing: () => call<PbRingSpec>('GetRing', {}).then(decodeRing),
    applyRing: (spec, expected) => call<PbApplyRingResponse>('ApplyRing', { spec: encodeRing(spec), expected_epoch: expected }),
    status: () => call<PbStatusResponse>('Status', {}),
    locate: (clientId) => call<PbLocateResponse>('Locate', { client_id: clientId }),
    health: () => call<PbHealthResponse>('Health', {}),
    close: () => client.close(),
  }
}

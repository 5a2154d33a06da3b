// Loads proto/ringmq.proto once with @grpc/proto-loader. Options are part of the contract
// mirrored by proto-types.ts: field names as written (keepCase), 64-bit integers as JS
// numbers (epochs, ids and ms timestamps stay below 2^53), bytes as Buffer, defaults filled
// in, and the name of the set oneof member in `body`.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { peerDeserializer, peerSerializer } from './peer-codec.js'

/** Finds proto/ringmq.proto from both src/ (vitest) and dist/src/ (built). */
export function protoPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'proto', 'ringmq.proto')
    if (fs.existsSync(candidate)) return candidate
    dir = path.dirname(dir)
  }
  throw new Error('proto/ringmq.proto not found')
}

export interface RingmqGrpc {
  Peer: grpc.ServiceClientConstructor
  Admin: grpc.ServiceClientConstructor
}

/** the contract of proto-types.ts */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
}

let loaded: RingmqGrpc | undefined

export function ringmqGrpc(): RingmqGrpc {
  if (loaded) return loaded
  const def = protoLoader.loadSync(protoPath(), LOADER_OPTIONS)
  // the data path's PublishBatch is framed by hand (peer-codec.ts); the same bytes either way
  const link = (def['ringmq.Peer'] as protoLoader.ServiceDefinition).Link!
  ;(def['ringmq.Peer'] as protoLoader.ServiceDefinition).Link = {
    ...link,
    requestSerialize: peerSerializer(link.requestSerialize),
    responseSerialize: peerSerializer(link.responseSerialize),
    requestDeserialize: peerDeserializer(link.requestDeserialize),
    responseDeserialize: peerDeserializer(link.responseDeserialize),
  }
  const pkg = grpc.loadPackageDefinition(def).ringmq as unknown as RingmqGrpc
  loaded = pkg
  return pkg
}

// Loads proto/ringmq.proto once with @grpc/proto-loader. Options are part of the contract
// mirrored by proto-types.ts: field names as written (keepCase), 64-bit integers as JS
// numbers (epochs, ids and ms timestamps stay below 2^53), bytes as Buffer, defaults filled
// in, and the name of the set oneof member in `body`.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

/** Finds proto/ringmq.proto from both src/ (vitest) and dist/src/ (built). */
function protoPath(): string {
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

let loaded: RingmqGrpc | undefined

export function ringmqGrpc(): RingmqGrpc {
  if (loaded) return loaded
  const def = protoLoader.loadSync(protoPath(), {
    keepCase: true,
    longs: Number,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  })
  const pkg = grpc.loadPackageDefinition(def).ringmq as unknown as RingmqGrpc
  loaded = pkg
  return pkg
}

// Every TCP connection the router opens to a worker, for a client or for a liveness probe, goes
// through connectWorker(), so that net.Socket and the stream constructors always see options of
// one hidden class. Each new class makes V8 throw away their optimised code ("wrong map") and
// compile it again on the next hot run, about 18 ms of compile thread per constructor: probes
// every 2 s with plain `{ host, port }` options had the router recompiling these constructors
// while it accepted clients.

import net from 'node:net'
import type { HostPort } from '../src/config/flags.js'

/** Reads a worker connection into `buffer`; `callback(n)` runs synchronously after each read. */
export interface WorkerRead {
  buffer: Buffer
  callback: (n: number) => boolean
}

export function connectWorker(at: HostPort, onread: WorkerRead): net.Socket {
  return net.connect({
    host: at.host,
    port: at.port,
    noDelay: true,
    allowHalfOpen: true,
    // net.Socket's constructor copies its options ({...options}) and then sets these three on the
    // copy. Given here with the values it sets, the copy keeps one hidden class; otherwise V8 (11.3,
    // Node 20) builds a new one for every socket and every options read in the stream
    // constructors misses its inline cache (~30 runtime lookups per socket).
    emitClose: false,
    autoDestroy: true,
    decodeStrings: false,
    // the worker's bytes skip the Readable machinery (push, 'data', flowing state)
    onread,
  } as net.NetConnectOpts)
}

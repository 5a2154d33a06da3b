// TCP_NODELAY for every accepted socket without a system call per accept.

import type net from 'node:net'

/**
 * Linux copies TCP_NODELAY from a listening socket to the sockets it accepts: set it once on
 * the listener and Node's per-connection setsockopt (the server's `noDelay`) can go. Elsewhere,
 * or if Node's handle does not offer it, every socket keeps getting it at accept. Call after
 * `listen()`: the listening handle exists only then.
 */
export function inheritNoDelay(server: net.Server): void {
  if (process.platform !== 'linux') return
  const s = server as net.Server & { _handle?: { setNoDelay?(on: boolean): number } | null; noDelay?: boolean }
  if (s.noDelay !== true || typeof s._handle?.setNoDelay !== 'function') return
  if (s._handle.setNoDelay(true) === 0) s.noDelay = false
}

// The broker under test, whatever it is. Cases only see host/port, an optional metrics URL and a
// few capability flags; `startTarget()` picks the implementation from CONFORMANCE_TARGET
// (`ringmq`, the default, or `mosquitto`, the reference broker the cases were validated against).

import { startMosquittoTarget } from './targets/mosquitto.js'
import { startRingmqTarget } from './targets/ringmq.js'

export type TargetKind = 'ringmq' | 'mosquitto'

/** Broker limits a file can ask for; each target maps them to its own flags or config. */
export interface TargetLimits {
  /** server maximum keepalive in seconds (5.0: sent as Server Keep Alive) */
  maxKeepalive?: number
  /** Receive Maximum the broker announces for client -> broker QoS 1/2 */
  receiveMaximum?: number
  /** largest packet the broker accepts, in bytes */
  maxPacketSize?: number
  /** how long a TCP connection may stay without CONNECT */
  connectTimeoutMs?: number
  maxConnections?: number
  /** keep durable state across `restart()` (Mosquitto: persistence on; ringmq always does) */
  persistent?: boolean
}

/**
 * What a target can do beyond the spec's MUSTs. A case that needs a capability is skipped
 * (not failed) on a target without it, and docs/conformance.md says why.
 */
export interface TargetCaps {
  /** the broker assigns topic aliases on its own PUBLISHes (a MAY in 5.0) */
  serverTopicAlias: boolean
  /** `connectTimeoutMs` is honoured */
  connectTimeout: boolean
  /** counters are served at metricsUrl */
  metrics: boolean
  /** `receiveMaximum` can be configured */
  receiveMaximum: boolean
  /** `kill9AndRestart()` keeps acknowledged state (Mosquitto only saves on a clean exit) */
  kill9: boolean
}

export interface Target {
  kind: TargetKind
  host: string
  port: number
  /** http://host:port/metrics when the target serves Prometheus metrics */
  metricsUrl?: string
  caps: TargetCaps
  /** SIGTERM the broker and start it again on the same port and data */
  restart(): Promise<void>
  /** SIGKILL the broker and start it again on the same port and data */
  kill9AndRestart(): Promise<void>
  stop(): Promise<void>
}

export const TARGET_CAPS: Record<TargetKind, TargetCaps> = {
  ringmq: { serverTopicAlias: true, connectTimeout: true, metrics: true, receiveMaximum: true, kill9: true },
  // Mosquitto 2.0.11: no outgoing topic aliases; no CONNECT deadline option; persistence is
  // written on exit (or on an autosave timer), so a SIGKILL loses recent state.
  mosquitto: { serverTopicAlias: false, connectTimeout: false, metrics: false, receiveMaximum: true, kill9: false },
}

export function targetKind(): TargetKind {
  const k = process.env.CONFORMANCE_TARGET ?? 'ringmq'
  if (k !== 'ringmq' && k !== 'mosquitto') throw new Error(`CONFORMANCE_TARGET must be ringmq or mosquitto, not ${k}`)
  return k
}

/** Capabilities of the target this run uses; known when the test file is loaded. */
export function caps(): TargetCaps {
  return TARGET_CAPS[targetKind()]
}

export function startTarget(limits: TargetLimits = {}): Promise<Target> {
  return targetKind() === 'mosquitto' ? startMosquittoTarget(limits) : startRingmqTarget(limits)
}

// Schema versions of stored records and the upgrade path between them.
//
// Every record carries `v`. On read, a record is brought to SCHEMA_VERSION by applying the
// upgraders of its database one version at a time (v -> v+1). A record the code cannot read —
// a newer version written by a newer ringmq, a version with no upgrade path, or something that
// is not a versioned record at all — is skipped with a warn log line and never crashes the
// worker. Upgrades happen in memory on read; the record is rewritten in the new version the next
// time the broker writes it (no stop-the-world migration).
//
// v1 is the first version, so every table below is empty. When a record shape changes: bump
// SCHEMA_VERSION in store.ts, change the record type, and add `{ [old]: (rec) => newShape }` to
// that database's table (the upgrader of version k turns a v=k record into a v=k+1 record).

import type { Logger } from '../log.js'
import { SCHEMA_VERSION } from './store.js'

export const DATABASES = ['sessions', 'subscriptions', 'queue', 'inflight', 'incoming_qos2', 'retained', 'meta'] as const
export type DatabaseName = (typeof DATABASES)[number]

/** Upgrades a record of version k (the map key) to version k+1. */
export type Upgrader = (rec: Record<string, unknown>) => Record<string, unknown>
export type UpgradeTable = Partial<Record<DatabaseName, Readonly<Record<number, Upgrader>>>>

export const upgraders: Readonly<UpgradeTable> = Object.freeze({})

/**
 * Returns `raw` as a current-version record of `db`, or undefined (with a warn line) when it
 * cannot be read. `table` is injectable so that the upgrade path itself can be tested.
 */
export function upgradeRecord<T>(
  db: DatabaseName,
  raw: unknown,
  log: Logger,
  table: UpgradeTable = upgraders,
): T | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    log.warn('store record skipped: not an object', { db })
    return undefined
  }
  let rec = raw as Record<string, unknown>
  const v = rec.v
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    log.warn('store record skipped: no schema version', { db })
    return undefined
  }
  if (v > SCHEMA_VERSION) {
    // Written by a newer ringmq (e.g. after a downgrade). Skipping keeps this worker serving;
    // the record stays on disk untouched until it is overwritten or deleted.
    log.warn('store record skipped: newer schema version', { db, v, known: SCHEMA_VERSION })
    return undefined
  }
  for (let k = v; k < SCHEMA_VERSION; k++) {
    const up = table[db]?.[k]
    if (!up) {
      log.warn('store record skipped: no upgrade path', { db, v, from: k, to: k + 1 })
      return undefined
    }
    rec = up(rec)
    if (rec.v !== k + 1) {
      log.warn('store record skipped: upgrader produced a wrong version', { db, v, from: k, got: rec.v })
      return undefined
    }
  }
  return rec as T
}

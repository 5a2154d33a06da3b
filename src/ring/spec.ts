// The ring spec: the whole cluster membership, versioned by epoch. Every node stores the newest
// spec it has seen; a higher epoch always wins. (Validation and the JSON file format are
// completed by the ring module; these types are the contract every part shares.)

export type WorkerState = 'active' | 'draining'

export interface RingWorker {
  /** stable worker ID, e.g. "w1" */
  id: string
  /** MQTT listener routers connect to, host:port */
  mqtt: string
  /** gRPC peer/admin listener, host:port */
  peer: string
  /** relative share of client IDs; 1 is the default */
  weight: number
  state: WorkerState
}

export interface RingSpec {
  /** monotonically increasing version; a node adopts any spec with a higher epoch */
  epoch: number
  /** replication factor N: prefs(clientId) has N distinct workers */
  replicas: number
  /** virtual nodes per unit of weight */
  vnodes: number
  workers: RingWorker[]
}

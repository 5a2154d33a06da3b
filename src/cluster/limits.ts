// Size limits of cluster frames.

/** Route snapshots and retained catch-ups are cut into chunks of about this size. */
export const CHUNK_BYTES = 1 << 20

/** Hard cap of one gRPC message, both directions (a chunk or a batch stays far below it). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024

// Size limits of cluster frames.

/** Route snapshots and retained catch-ups are cut into chunks of about this size. */
export const CHUNK_BYTES = 1 << 20

/**
 * HTTP/2 receive window of peer links, per stream and per connection, both sides: four 1 MiB
 * batches (forwarder.ts), so the sender never waits for a WINDOW_UPDATE while the receiver
 * keeps reading, and a 40 KB batch does not cost one. It is also what one link may buffer
 * in the receiver when the receiver pauses it (backpressure).
 */
export const PEER_WINDOW_BYTES = 4 << 20

/** Hard cap of one gRPC message, both directions (a chunk or a batch stays far below it). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024

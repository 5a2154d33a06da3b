// Learning the ring from running nodes (--join): ask each join address's Admin service for its
// ring and keep the highest epoch seen. At startup without --ring the router waits for the first
// answer; afterwards it polls, so an epoch spread by `ringmq ctl ring ...` reaches the router
// within one poll interval. gRPC is loaded only by routers started with --join.

import type { Logger } from '../src/log.js'
import type { RingSpec } from '../src/ring/spec.js'
import type { AdminClient } from '../src/cluster/admin-client.js'

export class RingFollower {
  #clients: { address: string; client: AdminClient }[]
  #log: Logger
  #timer: NodeJS.Timeout | undefined
  #polling = false

  private constructor(clients: { address: string; client: AdminClient }[], log: Logger) {
    this.#clients = clients
    this.#log = log
  }

  static async create(join: string[], log: Logger, timeoutMs = 2000): Promise<RingFollower> {
    const { createAdminClient } = await import('../src/cluster/admin-client.js')
    return new RingFollower(join.map((address) => ({ address, client: createAdminClient(address, { timeoutMs }) })), log)
  }

  /** The highest-epoch ring any join node answers with, or undefined when none answers. */
  async fetch(): Promise<RingSpec | undefined> {
    const answers = await Promise.all(
      this.#clients.map(({ address, client }) =>
        client.getRing().catch((err: Error) => {
          this.#log.debug('join node did not answer', { join: address, err })
          return undefined
        }),
      ),
    )
    let best: RingSpec | undefined
    for (const s of answers) if (s && (!best || s.epoch > best.epoch)) best = s
    return best
  }

  /** Waits until some join node answers (retrying every `retryMs`). */
  async first(retryMs: number, deadlineMs: number): Promise<RingSpec | undefined> {
    const until = Date.now() + deadlineMs
    for (;;) {
      const spec = await this.fetch()
      if (spec || Date.now() >= until) return spec
      this.#log.info('waiting for a join node to answer with the ring', { join: this.#clients.map((c) => c.address) })
      await new Promise((r) => setTimeout(r, retryMs))
    }
  }

  /** Polls every `intervalMs`; calls `adopt` with any spec whose epoch is above `epoch()`. */
  follow(intervalMs: number, epoch: () => number, adopt: (spec: RingSpec) => void): void {
    this.#timer = setInterval(() => {
      if (this.#polling) return
      this.#polling = true
      this.fetch()
        .then((spec) => {
          if (spec && spec.epoch > epoch()) adopt(spec)
        })
        .finally(() => {
          this.#polling = false
        })
    }, intervalMs)
    this.#timer.unref()
  }

  close(): void {
    clearInterval(this.#timer)
    for (const c of this.#clients) c.client.close()
  }
}

// A bystander for bad-input cases: a subscriber and a publisher connected before the bad client
// shows up. After each case `alive()` sends a fresh message through the broker and awaits it,
// proving the broker kept serving everyone else.

import { connectClient, endClient, uniq, type TestClient } from './clients.js'
import type { Target } from './target.js'

export class Witness {
  #sub: TestClient
  #pub: TestClient
  #topic: string

  private constructor(sub: TestClient, pub: TestClient, topic: string) {
    this.#sub = sub
    this.#pub = pub
    this.#topic = topic
  }

  static async start(target: Target): Promise<Witness> {
    const topic = `${uniq('witness')}/t`
    const sub = await connectClient(target, { protocolVersion: 5, clientId: uniq('witness-sub') })
    await sub.client.subscribeAsync(topic, { qos: 1 })
    const pub = await connectClient(target, { protocolVersion: 4, clientId: uniq('witness-pub') })
    return new Witness(sub, pub, topic)
  }

  async alive(): Promise<void> {
    const payload = uniq('alive')
    await this.#pub.client.publishAsync(this.#topic, payload, { qos: 1 })
    await this.#sub.messages.find((m) => m.payload === payload, 10000, `witness message ${payload}`)
  }

  async stop(): Promise<void> {
    await Promise.all([endClient(this.#sub), endClient(this.#pub)])
  }
}

// Topic-filter trie with dedicated `+` and `#` slots (after NATS' sublist) and a bounded
// match cache invalidated by a generation counter.
//
//   root ─ "sport" ─ "tennis" ─ values          filter sport/tennis
//        │        └ plus ─ values               filter sport/+
//        └ hash ─ values                        filter #
//
// `match(topic)` walks literal, plus and hash children level by level. A `#` child also matches
// its parent level ("sport/#" matches "sport") [MQTT-4.7.1-1]. Root-level wildcards never match
// topics starting with `$` [MQTT-4.7.2-1]. Values are compared by identity.

class Node<T> {
  children: Map<string, Node<T>> | null = null
  plus: Node<T> | null = null
  hash: Node<T> | null = null
  values: T[] = []
  isEmpty(): boolean {
    return this.values.length === 0 && this.plus === null && this.hash === null && (this.children === null || this.children.size === 0)
  }
}

const EMPTY: readonly never[] = Object.freeze([])

export class Trie<T> {
  #root = new Node<T>()
  #cache = new Map<string, readonly T[]>()
  #cacheMax: number
  #generation = 0
  #size = 0

  constructor(cacheMax = 8192) {
    this.#cacheMax = cacheMax
  }

  /** Bumped on every change; a cached match is valid only for the generation it was made in. */
  get generation(): number {
    return this.#generation
  }

  /** Number of stored values. */
  get size(): number {
    return this.#size
  }

  add(filter: string, value: T): void {
    let node = this.#root
    for (const level of filter.split('/')) {
      if (level === '+') node = node.plus ??= new Node<T>()
      else if (level === '#') node = node.hash ??= new Node<T>()
      else {
        node.children ??= new Map()
        let next = node.children.get(level)
        if (!next) node.children.set(level, (next = new Node<T>()))
        node = next
      }
    }
    node.values.push(value)
    this.#size++
    this.#invalidate()
  }

  /** Removes one value stored under `filter`; returns whether it was there. */
  remove(filter: string, value: T): boolean {
    const levels = filter.split('/')
    const path: Node<T>[] = [this.#root]
    let node: Node<T> | null | undefined = this.#root
    for (const level of levels) {
      if (level === '+') node = node.plus
      else if (level === '#') node = node.hash
      else node = node.children?.get(level)
      if (!node) return false
      path.push(node)
    }
    const i = node.values.indexOf(value)
    if (i < 0) return false
    node.values[i] = node.values[node.values.length - 1]!
    node.values.pop()
    this.#size--
    // prune empty nodes bottom-up so that the trie does not grow with churn
    for (let d = levels.length; d > 0; d--) {
      const child = path[d]!
      if (!child.isEmpty()) break
      const parent = path[d - 1]!
      const level = levels[d - 1]!
      if (level === '+') parent.plus = null
      else if (level === '#') parent.hash = null
      else parent.children!.delete(level)
    }
    this.#invalidate()
    return true
  }

  /** Values of every filter matching `topic`. The returned array must not be mutated. */
  match(topic: string): readonly T[] {
    const cached = this.#cache.get(topic)
    if (cached !== undefined) return cached
    const out: T[] = []
    const levels = topic.split('/')
    const dollar = topic.charCodeAt(0) === 36
    this.#walk(this.#root, levels, 0, out, dollar)
    const result = out.length === 0 ? (EMPTY as readonly T[]) : out
    if (this.#cache.size >= this.#cacheMax) this.#cache.clear()
    this.#cache.set(topic, result)
    return result
  }

  /** Every stored value with its filter (for snapshots and diagnostics). */
  *entries(): Generator<[string, T]> {
    yield* this.#entries(this.#root, [])
  }

  *#entries(node: Node<T>, prefix: string[]): Generator<[string, T]> {
    const f = prefix.join('/')
    for (const v of node.values) yield [f, v]
    if (node.children) for (const [k, c] of node.children) yield* this.#entries(c, [...prefix, k])
    if (node.plus) yield* this.#entries(node.plus, [...prefix, '+'])
    if (node.hash) yield* this.#entries(node.hash, [...prefix, '#'])
  }

  #walk(node: Node<T>, levels: string[], i: number, out: T[], dollar: boolean): void {
    // root-level wildcards do not match $-topics [MQTT-4.7.2-1]
    const wild = !(dollar && i === 0)
    if (wild && node.hash !== null) pushAll(out, node.hash.values)
    if (i === levels.length) {
      pushAll(out, node.values)
      return
    }
    if (node.children !== null) {
      const next = node.children.get(levels[i]!)
      if (next !== undefined) this.#walk(next, levels, i + 1, out, dollar)
    }
    if (wild && node.plus !== null) this.#walk(node.plus, levels, i + 1, out, dollar)
  }

  #invalidate(): void {
    this.#generation++
    if (this.#cache.size > 0) this.#cache.clear()
  }
}

function pushAll<T>(out: T[], values: T[]): void {
  for (let i = 0; i < values.length; i++) out.push(values[i]!)
}

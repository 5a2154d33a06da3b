// A topic-filter trie: one node per level, `+` and `#` stored as ordinary children and tried
// beside the literal child while matching. Holds one value per filter.
//
//   sensors ─┬─ +  ─── temp    (value for "sensors/+/temp")
//            └─ #              (value for "sensors/#")

interface Node<V> {
  children: Map<string, Node<V>>
  value: V | undefined
}

const newNode = <V>(): Node<V> => ({ children: new Map(), value: undefined })

export class FilterTrie<V> {
  #root: Node<V> = newNode()
  #size = 0

  get size(): number {
    return this.#size
  }

  get(filter: string): V | undefined {
    let node: Node<V> | undefined = this.#root
    for (const level of filter.split('/')) {
      node = node.children.get(level)
      if (!node) return undefined
    }
    return node.value
  }

  set(filter: string, value: V): void {
    let node = this.#root
    for (const level of filter.split('/')) {
      let next = node.children.get(level)
      if (!next) {
        next = newNode()
        node.children.set(level, next)
      }
      node = next
    }
    if (node.value === undefined) this.#size++
    node.value = value
  }

  delete(filter: string): void {
    const levels = filter.split('/')
    const path: Node<V>[] = [this.#root]
    for (const level of levels) {
      const next = path[path.length - 1]!.children.get(level)
      if (!next) return
      path.push(next)
    }
    const leaf = path[path.length - 1]!
    if (leaf.value === undefined) return
    leaf.value = undefined
    this.#size--
    // prune empty branches so the trie does not grow with churn
    for (let i = levels.length; i > 0; i--) {
      const node = path[i]!
      if (node.value !== undefined || node.children.size > 0) break
      path[i - 1]!.children.delete(levels[i - 1]!)
    }
  }

  /** Calls `visit` with the value of every filter matching `topic`. */
  match(topic: string, visit: (value: V) => void): void {
    const levels = topic.split('/')
    // [MQTT-4.7.2-1] wildcards at the first level do not match topics starting with '$'
    const dollar = topic.startsWith('$')
    const walk = (node: Node<V>, i: number): void => {
      const hash = node.children.get('#')
      // "a/#" also matches "a" [MQTT-4.7.1-2]
      if (hash?.value !== undefined && !(dollar && i === 0)) visit(hash.value)
      if (i === levels.length) {
        if (node.value !== undefined) visit(node.value)
        return
      }
      const literal = node.children.get(levels[i]!)
      if (literal) walk(literal, i + 1)
      const plus = node.children.get('+')
      if (plus && !(dollar && i === 0)) walk(plus, i + 1)
    }
    walk(this.#root, 0)
  }
}

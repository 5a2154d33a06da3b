declare module 'hashring' {
  type Servers = string | string[] | Record<string, { weight?: number; vnodes?: number } | number>
  interface Options { 'vnode count'?: number; compatibility?: 'hash_ring'; replicas?: number; 'max cache size'?: number; 'default port'?: number }
  class HashRing {
    constructor(servers?: Servers, algorithm?: string | ((key: string) => string | Buffer), options?: Options)
    get(key: string): string
    range(key: string, size?: number, unique?: boolean): string[]
    add(servers: Servers): this
    remove(server: string): this
    has(server: string): boolean
    swap(from: string, to: string): this
    reset(): this
    end(): this
    points(servers?: string[]): Record<string, unknown>
    continuum(): this
    find(hash: number): number
  }
  export = HashRing
}

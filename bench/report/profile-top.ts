// `node dist/bench/report/profile-top.js FILE.cpuprofile [N]`: the N functions with the most
// self time in a V8 CPU profile (as written by `npm run bench -- --cpu-prof`), and the
// share of the total, to see where a Node target spends its time without opening DevTools.

import fs from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface TopEntry {
  name: string
  selfMs: number
  share: number
}

export function topSelf(p: CpuProfile, n: number): TopEntry[] {
  const byId = new Map(p.nodes.map((x) => [x.id, x]))
  const self = new Map<string, number>()
  let total = 0
  // samples[i] was taken timeDeltas[i+1] before the next one; the delta is its weight
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000
    const node = byId.get(p.samples[i]!)
    if (!node) continue
    const f = node.callFrame
    const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : ''
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim()
    self.set(key, (self.get(key) ?? 0) + dt)
    total += dt
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => ({ name, selfMs: ms, share: total > 0 ? ms / total : 0 }))
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const file = process.argv[2]
  if (!file) {
    process.stderr.write('usage: node dist/bench/report/profile-top.js FILE.cpuprofile [N]\n')
    process.exit(2)
  }
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile
  for (const e of topSelf(p, Number(process.argv[3] ?? 25))) process.stdout.write(`${(e.share * 100).toFixed(1).padStart(5)}% ${e.selfMs.toFixed(1).padStart(9)} ms  ${e.name}\n`)
}

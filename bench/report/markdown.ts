// The Markdown report written to bench/results/: environment, the side-by-side table
// (median and min-max over rounds), the issue's targets, ratios and anomalies.

import { evaluateTargets, IDS, ratiosAgainst, type Check } from './checks.js'
import { fmt, unitOf } from './format.js'
import { anomalies, figureKeys, type Aggregate, type TargetRound } from './summary.js'

export interface RunInfo {
  command: string
  mode: 'quick' | 'full'
  startedAt: string
  elapsedS: number
  rounds: number
  roundsPlanned: number
  pinning: string
  environment: string[]
  /** targets in column order with their labels */
  targets: { id: string; label: string }[]
  skipped: { id: string; why: string }[]
  scenarioOrder: string[]
  notes: string[]
}

export function checkLine(c: Check): string {
  const v = c.unit === 'ratio' ? `${fmt(c.value)}x` : `${fmt(c.value)} ${c.unit}`
  const lim = c.unit === 'ratio' ? `<= ${c.limit}x` : `${c.unit === 'us' && c.what.includes('p99') ? '<' : '<='} ${c.limit} ${c.unit}`
  return `| ${c.what} | ${c.status === 'SKIP' ? '—' : v} | ${lim} | **${c.status}**${c.why ? ` (${c.why})` : ''} |`
}

export function renderMarkdown(info: RunInfo, agg: Aggregate, rounds: TargetRound[]): string {
  const cols = info.targets.filter((t) => agg.has(t.id))
  const keys = figureKeys(agg, info.scenarioOrder)
  const L: string[] = []
  L.push(`# ringmq bench: side by side (${info.mode})`, '')
  L.push(`Reproduce: \`${info.command}\``, '')
  L.push(`- started ${info.startedAt}, ${info.elapsedS.toFixed(0)} s, ${info.rounds} of ${info.roundsPlanned} rounds (systems alternate within each round)`)
  L.push(`- ${info.pinning}`)
  for (const e of info.environment) L.push(`- ${e}`)
  for (const s of info.skipped) L.push(`- skipped **${s.id}**: ${s.why}`)
  L.push('')
  L.push('## Results', '', 'Median over rounds, min-max in brackets.', '')
  L.push(`| figure | unit | ${cols.map((c) => c.id).join(' | ')} |`)
  L.push(`| --- | --- | ${cols.map(() => '---:').join(' | ')} |`)
  for (const k of keys) {
    const cells = cols.map((c) => {
      const s = agg.get(c.id)?.get(k)
      if (!s || s.n === 0) return '—'
      return s.n > 1 ? `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})` : fmt(s.median)
    })
    L.push(`| ${k} | ${unitOf(k)} | ${cells.join(' | ')} |`)
  }
  L.push('')
  L.push('## Targets (issue 5)', '')
  L.push('| target | measured | limit | result |', '| --- | ---: | --- | --- |')
  for (const c of evaluateTargets(agg)) L.push(checkLine(c))
  L.push('')
  for (const ref of [IDS.mosquitto, IDS.aedes]) {
    const rs = ratiosAgainst(agg, IDS.worker, ref, keys)
    if (rs.length === 0) continue
    L.push(`## Ratios ringmq worker / ${ref}`, '', '| figure | ratio |', '| --- | ---: |')
    for (const r of rs) L.push(`| ${r.key} | ${fmt(r.ratio)}x |`)
    L.push('')
  }
  const an = anomalies(rounds)
  if (an.length > 0) {
    L.push('## Anomalies', '')
    for (const a of an) L.push(`- ${a}`)
    L.push('')
  }
  if (info.notes.length > 0) {
    L.push('## How it was measured', '')
    for (const n of info.notes) L.push(`- ${n}`)
    L.push('')
  }
  return L.join('\n')
}

/**
 * The short form for the README's performance section: headline figures (medians), the
 * targets' verdicts and the command that reproduces them.
 */
export function renderReadmeSection(info: RunInfo, agg: Aggregate, figures: string[], rounds: TargetRound[]): string {
  const cols = info.targets.filter((t) => agg.has(t.id))
  const L: string[] = []
  L.push('## Performance', '')
  L.push(
    `Measured by \`${info.command}\` (${info.startedAt.slice(0, 10)}, ${info.rounds} rounds, medians; ${info.pinning}). ` +
      `Same load generator for every system; see [docs/bench.md](docs/bench.md) for the method and \`bench/results/${info.mode}.md\` for min-max, ratios and anomalies.`,
    '',
  )
  L.push(`| figure | unit | ${cols.map((c) => c.id).join(' | ')} |`)
  L.push(`| --- | --- | ${cols.map(() => '---:').join(' | ')} |`)
  for (const k of figures) {
    if (!cols.some((c) => agg.get(c.id)?.has(k))) continue
    L.push(`| ${k} | ${unitOf(k)} | ${cols.map((c) => fmt(agg.get(c.id)?.get(k)?.median ?? NaN)).join(' | ')} |`)
  }
  L.push('')
  const checks = evaluateTargets(agg)
  const count = (s: string): number => checks.filter((c) => c.status === s).length
  L.push(`Targets of issue 5: ${count('PASS')} pass, ${count('FAIL')} fail, ${count('SKIP')} not measured.`, '')
  L.push('| target | measured | limit | result |', '| --- | ---: | --- | --- |')
  for (const c of checks) if (c.status !== 'SKIP') L.push(checkLine(c))
  for (const s of info.skipped) L.push('', `Not measured: **${s.id}** (${s.why}).`)
  // ran, but produced no figure: say why (its first error)
  for (const t of info.targets) {
    if (agg.has(t.id) && agg.get(t.id)!.size > 0) continue
    const mine = rounds.filter((r) => r.target === t.id)
    const why = mine.map((r) => r.error ?? r.results.find((x) => x.kind === 'error')?.error).find(Boolean)
    if (why) L.push('', `Not measured: **${t.id}** (${why}).`)
  }
  L.push('')
  return L.join('\n')
}

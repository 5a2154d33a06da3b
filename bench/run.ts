// `npm run bench [-- --full] [--rounds N] [--targets a,b] [--out DIR]`
//
// Runs the scenario matrix against every runnable target, alternating the systems within
// each round (A B C A B C ...), with the servers pinned to CPU 0 and this process (the load
// generator) to CPU 1. Writes quick|full.md, .svg, .json and -readme.md to bench/results/ and
// prints the table and the issue's targets. Loopback only; starts nothing it does not stop;
// installs nothing and says what is missing.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { runIdle } from './gen/idle.js'
import { PrimeTimeout, runLoad } from './gen/load.js'
import { cpuUs, hasSchedstat, rssKb } from './proc/proc-stat.js'
import { evaluateTargets } from './report/checks.js'
import { checkLine, renderMarkdown, renderReadmeSection, type RunInfo } from './report/markdown.js'
import { aggregate, type ScenarioResult, type TargetRound } from './report/summary.js'
import { CHART_FIGURES, renderSvg } from './report/svg.js'
import { fullScenarios, quickScenarios, targetWarmup, type Scenario } from './scenarios.js'
import { aedesTarget } from './targets/aedes.js'
import { haproxyTarget, HAPROXY } from './targets/haproxy.js'
import { mosquittoTarget, MOSQUITTO } from './targets/mosquitto.js'
import { clusterTarget, routerTarget, workerTarget } from './targets/ringmq.js'
import { hasTaskset, killAllStarted } from './targets/server-process.js'
import type { RunningTarget, TargetDef } from './targets/target.js'

/** unmeasured connects a Node target makes between the idle scenario's memory and CPU passes */
const IDLE_WARM_CONNECTS = 3000

const ALL_TARGETS: TargetDef[] = [mosquittoTarget, aedesTarget, haproxyTarget, workerTarget, routerTarget, clusterTarget]
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

interface Options {
  full: boolean
  rounds: number
  targets: string[] | null
  scenarios: string[] | null
  out: string
  budgetS: number
  pin: boolean
  /** directory for `node --cpu-prof` profiles of the Node targets, or null */
  cpuProf: string | null
  /** re-render the reports of an earlier run from its JSON instead of running */
  from: string | null
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      full: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      targets: { type: 'string' },
      scenarios: { type: 'string' },
      out: { type: 'string' },
      budget: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      from: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) {
    process.stdout.write(
      [
        'usage: npm run bench [-- --full] [--rounds N] [--targets id,id] [--scenarios name,name] [--out DIR] [--budget SECONDS] [--no-pin] [--cpu-prof]',
        `  targets: ${ALL_TARGETS.map((t) => t.id).join(', ')}`,
        '  quick (default): the figures the targets are judged on, short windows, about 3 minutes',
        '  --cpu-prof: run Node targets (ringmq, Aedes) under node --cpu-prof, profiles in <out>/profiles/',
        '  --from FILE.json: rewrite the reports of an earlier run (bench/results/quick.json) without running',
        '  --full: QoS 2, MQTT 5.0, fan-in/fan-out, payloads, 9,000 idle connections (about 30 minutes)',
        '',
      ].join('\n'),
    )
    process.exit(0)
  }
  const full = values.full!
  const rounds = Number(values.rounds ?? 3)
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('--rounds: 1..20')
  const out = path.resolve(values.out ?? path.join(ROOT, 'bench/results'))
  return {
    full,
    rounds,
    targets: values.targets ? values.targets.split(',').map((s) => s.trim()) : null,
    scenarios: values.scenarios ? values.scenarios.split(',').map((s) => s.trim()) : null,
    out,
    // quick must stay under 3 minutes with the build in front of it
    budgetS: Number(values.budget ?? (full ? 3600 : 170)),
    pin: !values['no-pin'],
    cpuProf: values['cpu-prof'] ? path.join(out, 'profiles') : null,
    from: values.from ? path.resolve(values.from) : null,
  }
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim()) ?? `${cmd}: not available`
}

function environment(): string[] {
  const cpu = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model ?? '?'
  return [
    `${os.cpus().length} CPUs (${cpu}), Linux ${os.release()}, Node ${process.version}`,
    `${firstLine(MOSQUITTO, ['-h'])}; ${firstLine(HAPROXY, ['-v'])}`,
    `load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (a shared machine makes every figure noisier; CPU per message is the most stable)`,
  ]
}

function samplers(rt: RunningTarget): { cpu: () => Record<string, number>; rss: () => Record<string, number> } {
  const sum = (f: (pid: number) => number) => (): Record<string, number> => {
    const o: Record<string, number> = {}
    for (const [k, procs] of Object.entries(rt.groups)) if (procs) o[k] = procs.reduce((a, p) => a + f(p.pid), 0)
    return o
  }
  return { cpu: sum(cpuUs), rss: sum(rssKb) }
}

function describe(r: ScenarioResult): string {
  if (r.kind === 'error') return `${r.scenario}: ERROR ${r.error}`
  if (r.kind === 'idle') return `${r.spec.name}: ${r.connected} conns ${r.connectsPerSec.toFixed(0)}/s, ${r.rssKbPerConn.total?.toFixed(2)} KB/conn, ${r.cpuUsPerConnect.total?.toFixed(1)} us/connect${r.failed ? `, ${r.failed} FAILED` : ''}`
  const lat = r.spec.mode === 'open' ? `, p50 ${r.latency.p50Us.toFixed(0)} us p99 ${r.latency.p99Us.toFixed(0)} us` : ''
  const own = r.cpuUsPerMsg.own !== undefined ? ` (own ${r.cpuUsPerMsg.own.toFixed(2)})` : ''
  return `${r.spec.name}: ${r.deliveredPerSec.toFixed(0)} msg/s, ${r.cpuUsPerMsg.total?.toFixed(2)} us/msg${own}${lat}, gen ${r.generatorCpuPct.toFixed(0)}%${r.missing ? `, ${r.missing} MISSING` : ''}`
}

async function runTargetRound(t: TargetDef, round: number, scenarios: Scenario[], serverCpu: number | undefined, cpuProf: string | null): Promise<TargetRound> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ringmq-bench-${t.id}-`))
  const tr: TargetRound = { target: t.id, round, results: [] }
  let rt: RunningTarget
  try {
    // a profile is written when the process exits, named after it, e.g. CPU.2026...-PID.cpuprofile
    const nodeArgs = cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(cpuProf, `${t.id}-r${round + 1}`)}`] : []
    rt = await t.start({ dir, serverCpu, nodeArgs })
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    tr.error = `failed to start: ${(err as Error).message}`
    log(`  ${t.id}: ${tr.error}`)
    return tr
  }
  const s = samplers(rt)
  let noDelivery: string | null = null
  try {
    if (t.jit && scenarios.some((sc) => sc.kind === 'load')) {
      for (const spec of targetWarmup()) {
        // a failure here shows again, and is reported, in the measured scenarios
        await runLoad(spec, { placement: rt.placement, clientIdPrefix: `b${round}-${spec.name}` }).catch((err: Error) => log(`  ${t.id.padEnd(15)} warm-up ${spec.name}: ${err.message}`))
      }
    }
    for (const sc of scenarios) {
      if (sc.kind === 'idle' && !t.idle) continue
      if (!t.protocols.includes(sc.spec.protocol)) {
        tr.results.push({ kind: 'error', scenario: sc.spec.name, error: `not run: ${t.label} does not speak MQTT ${sc.spec.protocol === 5 ? '5.0' : '3.1.1'}` })
        continue
      }
      if (noDelivery !== null && sc.kind === 'load') {
        tr.results.push({ kind: 'error', scenario: sc.spec.name, error: `not run: ${noDelivery}` })
        continue
      }
      const prefix = `b${round}-${sc.spec.name}`
      let r: ScenarioResult
      try {
        r = sc.kind === 'load'
          ? await runLoad(sc.spec, { placement: rt.placement, clientIdPrefix: prefix, sampleCpu: s.cpu })
          : await runIdle(sc.spec, { placement: rt.placement, clientIdPrefix: prefix, sampleCpu: s.cpu, sampleRss: s.rss, warmConnects: t.jit ? IDLE_WARM_CONNECTS : 0 })
      } catch (err) {
        r = { kind: 'error', scenario: sc.spec.name, error: (err as Error).message }
        // a target that delivers nothing would only time out again in every load scenario
        if (err instanceof PrimeTimeout) noDelivery = `${sc.spec.name} delivered nothing`
      }
      tr.results.push(r)
      log(`  ${t.id.padEnd(15)} ${describe(r)}`)
      const dead = Object.values(rt.groups).flat().find((p) => p && !fs.existsSync(`/proc/${p.pid}`))
      if (dead) {
        const why = await dead.exitReason()
        tr.error = `${dead.name} (pid ${dead.pid}) died during ${sc.spec.name}${why ? ` (${why})` : ''}`
        break
      }
    }
  } finally {
    await rt.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return tr
}

function log(s: string): void {
  process.stdout.write(s + '\n')
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2))
  if (opts.from) {
    const { info, rounds } = JSON.parse(fs.readFileSync(opts.from, 'utf8')) as { info: RunInfo; rounds: TargetRound[] }
    writeReports(opts.out, info, rounds)
    return
  }
  const started = Date.now()
  const onSignal = (): void => {
    killAllStarted()
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  let serverCpu: number | undefined
  let pinning = 'not pinned (--no-pin)'
  if (opts.pin) {
    if (os.cpus().length >= 2 && hasTaskset()) {
      // -a: every thread of this process (libuv pool, V8 helpers) moves with it
      spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' })
      serverCpu = 0
      pinning = 'servers pinned to CPU 0 (proxy and its broker together), generator to CPU 1 (taskset)'
    } else pinning = `not pinned (${os.cpus().length < 2 ? 'fewer than 2 CPUs' : 'taskset not found'})`
  }

  const chosen = opts.targets ? ALL_TARGETS.filter((t) => opts.targets!.includes(t.id)) : ALL_TARGETS
  const unknown = (opts.targets ?? []).filter((id) => !ALL_TARGETS.some((t) => t.id === id))
  if (unknown.length > 0) throw new Error(`unknown target(s): ${unknown.join(', ')}`)
  const runnable: TargetDef[] = []
  const skipped: { id: string; why: string }[] = []
  for (const t of chosen) {
    const why = await t.probe()
    if (why) {
      skipped.push({ id: t.id, why })
      log(`skipped: ${t.id}: ${why}`)
    } else runnable.push(t)
  }
  if (runnable.length === 0) throw new Error('no target can run here (see the skipped lines)')
  const matrix = opts.full ? fullScenarios() : quickScenarios()
  const scenarios = opts.scenarios ? matrix.filter((s) => opts.scenarios!.includes(s.spec.name)) : matrix
  if (scenarios.length === 0) throw new Error(`no scenario named ${opts.scenarios!.join(', ')}; have ${matrix.map((s) => s.spec.name).join(', ')}`)
  log(`bench ${opts.full ? 'full' : 'quick'}: ${runnable.map((t) => t.id).join(', ')} x ${opts.rounds} rounds, ${scenarios.length} scenarios; ${pinning}`)

  const rounds: TargetRound[] = []
  let done = 0
  outer: for (let r = 0; r < opts.rounds; r++) {
    log(`round ${r + 1}/${opts.rounds}`)
    for (const t of runnable) {
      if ((Date.now() - started) / 1000 > opts.budgetS) {
        log(`time budget of ${opts.budgetS} s used up: stopping after ${done} complete round(s)`)
        break outer
      }
      rounds.push(await runTargetRound(t, r, scenarios, serverCpu, opts.cpuProf))
    }
    done++
  }

  const info: RunInfo = {
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    mode: opts.full ? 'full' : 'quick',
    startedAt: new Date(started).toISOString(),
    elapsedS: (Date.now() - started) / 1000,
    rounds: done,
    roundsPlanned: opts.rounds,
    pinning,
    environment: environment(),
    targets: ALL_TARGETS.map((t) => ({ id: t.id, label: t.label })),
    skipped,
    scenarioOrder: scenarios.map((s) => s.spec.name),
    notes: [
      'generator: one Node process on raw sockets; control packets by mqtt-packet, PUBLISH frames hand-encoded from a per-publisher template, incoming frames split by a minimal framer',
      'sat-*: closed loop, 8 publishers -> 8 subscribers (one topic per pair), 64 B payload, MQTT 3.1.1, at most 100 messages in flight per publisher (16 for QoS 2) so brokers deliver rather than buffer; msg/s = deliveries per second inside the measured window',
      'rate*-*: open loop at a fixed delivered rate; latency = receive time - send timestamp carried in the payload (performance.now(), same process), for messages sent inside the window',
      `cpu: server CPU over the measured window / messages delivered in it, from ${hasSchedstat() ? '/proc/PID/task/*/schedstat (ns resolution; /proc/PID/stat utime+stime is 10 ms ticks)' : '/proc/PID/stat utime+stime'}; "cpu" sums every server process of the target, "cpu.own" the proxy alone (HAProxy, ringmq router)`,
      'idle: connections opened at a bounded connect rate and held idle; rss = VmRSS growth / connections; cpu/conn = server CPU over the connect phase / connections',
      `warm-up: every load scenario runs unmeasured first; Node targets (ringmq, Aedes) also get ${targetWarmup().map((w) => `${w.durationMs} ms of ${w.name.replace('warm-', '')}`).join(' + ')} load before their first scenario and ${IDLE_WARM_CONNECTS} unmeasured connects between the idle memory and CPU passes (V8 compiles their hot paths meanwhile); Mosquitto and HAProxy need none`,
      'every run checks delivery: messages sent vs delivered (per publisher sequence numbers), listed under Anomalies when they differ',
    ],
  }
  writeReports(opts.out, info, rounds)
}

/** Writes <mode>.md/.svg/.json/-readme.md and prints the table and the targets. */
function writeReports(out: string, info: RunInfo, rounds: TargetRound[]): void {
  const agg = aggregate(rounds)
  fs.mkdirSync(out, { recursive: true })
  // quick.* and full.* side by side, so a quick run does not overwrite the whole matrix
  const base = path.join(out, info.mode)
  const md = renderMarkdown(info, agg, rounds)
  const ran = info.targets.map((t) => t.id).filter((id) => rounds.some((r) => r.target === id))
  fs.writeFileSync(`${base}.md`, md)
  fs.writeFileSync(`${base}.svg`, renderSvg(agg, ran, `ringmq bench (${info.mode}), ${info.startedAt.slice(0, 10)}`))
  fs.writeFileSync(`${base}-readme.md`, renderReadmeSection(info, agg, ['sat-q0 msg/s', ...CHART_FIGURES.slice(1), 'rate2k-q0 p99.9'], rounds))
  fs.writeFileSync(`${base}.json`, JSON.stringify({ info, rounds }, null, 1))
  log('')
  log(md.slice(md.indexOf('## Results'), md.indexOf('## Targets')).trim())
  log('')
  log('targets (issue 5):')
  for (const c of evaluateTargets(agg)) log(checkLine(c))
  log(`\nwritten: ${path.relative(process.cwd(), base)}.md, .svg, .json and -readme.md (${info.elapsedS.toFixed(0)} s)`)
}

main().catch((err) => {
  killAllStarted()
  process.stderr.write(`bench: ${(err as Error).message}\n`)
  process.exit(1)
})

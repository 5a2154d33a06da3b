// Process CPU and memory from /proc, for the broker-side figures.
//
// CPU: /proc/PID/stat utime+stime counts in clock ticks (10 ms on this kernel), which is too
// coarse for "CPU per connect" over a few thousand connects. When the kernel exposes
// schedstat we therefore sum /proc/PID/task/*/schedstat (nanoseconds on CPU, per thread);
// it misses only threads that exited inside the window, which brokers do not do. Both
// readings are available so a report can say which one it used.

import fs from 'node:fs'

const TICK_US = 10_000 // 1e6 / CLK_TCK, CLK_TCK = 100 on Linux x86_64 and arm64

/** utime+stime of the whole thread group, microseconds (tick resolution). */
export function statCpuUs(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  // comm may contain spaces and parentheses: fields start after the last ')'
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  // after comm: f[0] = state (field 3), utime = field 14, stime = field 15
  return (Number(f[11]) + Number(f[12])) * TICK_US
}

/** Sum of on-CPU time of the live threads, microseconds (nanosecond resolution); null if unavailable. */
export function schedCpuUs(pid: number): number | null {
  let tids: string[]
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    return null
  }
  let ns = 0
  for (const t of tids) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      // thread exited between readdir and read
    }
  }
  return ns / 1000
}

export function hasSchedstat(): boolean {
  return fs.existsSync('/proc/self/schedstat')
}

/** CPU microseconds of one process by the best available source. */
export function cpuUs(pid: number): number {
  return schedCpuUs(pid) ?? statCpuUs(pid)
}

/** Resident set size in KB (VmRSS from /proc/PID/status). */
export function rssKb(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(s)
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

export function isAlive(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`)
}

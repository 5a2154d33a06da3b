// Reads counters from a target's Prometheus endpoint (ringmq only). Names are matched by suffix
// so a metric prefix (`ringmq_...`) does not matter.

export async function scrape(url: string): Promise<string> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`)
  return res.text()
}

/** Sum of every sample of the metric whose name ends with `suffix`, labels filtered by `labels`. */
export function sumMetric(text: string, suffix: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (!m || !m[1]!.endsWith(suffix)) continue
    const labelText = m[2] ?? ''
    if (!Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) continue
    sum += Number(m[3])
  }
  return sum
}

export async function readMetric(url: string, suffix: string, labels: Record<string, string> = {}): Promise<number> {
  return sumMetric(await scrape(url), suffix, labels)
}

/** Polls until the metric exceeds `baseline`; returns the new value or throws with the last value. */
export async function metricIncreased(url: string, suffix: string, baseline: number, timeoutMs = 10000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let value = baseline
  while (Date.now() < deadline) {
    value = await readMetric(url, suffix)
    if (value > baseline) return value
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${suffix} did not increase above ${baseline} (last ${value})`)
}

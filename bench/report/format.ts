// Number and unit formatting shared by the Markdown and SVG reports.

export const UNITS: Record<string, string> = {
  'msg/s': 'msg/s',
  cpu: 'us/msg',
  'cpu.own': 'us/msg (proxy only)',
  p50: 'us',
  p99: 'us',
  'p99.9': 'us',
  'conn/s': 'connects/s',
  rss: 'KB/conn',
  'rss.own': 'KB/conn (proxy only)',
  'cpu/conn': 'us/connect',
  'cpu/conn.own': 'us/connect (proxy only)',
}

export function unitOf(key: string): string {
  return UNITS[key.slice(key.indexOf(' ') + 1)] ?? ''
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '—'
  const a = Math.abs(x)
  if (a >= 1000) return Math.round(x).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  return x.toFixed(2)
}

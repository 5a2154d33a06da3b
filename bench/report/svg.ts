// A small SVG chart of the headline figures, hand-written (no dependencies): one panel per
// figure, one horizontal bar per system at its median with a min-max whisker.

import { fmt, unitOf } from './format.js'
import type { Aggregate } from './summary.js'

export const CHART_FIGURES = [
  'sat-q0 msg/s',
  'sat-q0 cpu',
  'sat-q1 cpu',
  'rate20k-q0 cpu',
  'rate20k-q1 cpu',
  'rate2k-q0 p50',
  'rate2k-q0 p99',
  'idle rss',
  'idle cpu/conn',
]

const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7']
const PANEL_W = 330
const COLS = 3
const BAR_H = 16
const LABEL_W = 110

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

export function renderSvg(agg: Aggregate, targets: string[], title: string, figures: string[] = CHART_FIGURES): string {
  const shown = figures.filter((f) => targets.some((t) => Number.isFinite(agg.get(t)?.get(f)?.median ?? NaN)))
  const panelH = 34 + targets.length * (BAR_H + 6)
  const rows = Math.ceil(shown.length / COLS)
  const W = PANEL_W * COLS + 20
  const H = 40 + rows * (panelH + 16) + 24
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  out.push(`<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`)
  shown.forEach((fig, i) => {
    const x0 = 10 + (i % COLS) * PANEL_W
    const y0 = 40 + Math.floor(i / COLS) * (panelH + 16)
    const stats = targets.map((t) => agg.get(t)?.get(fig))
    const max = Math.max(...stats.map((s) => (s && Number.isFinite(s.max) ? s.max : 0)), 1e-9)
    const plotW = PANEL_W - LABEL_W - 60
    out.push(`<text x="${x0}" y="${y0 + 12}" font-weight="bold">${esc(fig)} (${esc(unitOf(fig))})</text>`)
    targets.forEach((t, j) => {
      const y = y0 + 22 + j * (BAR_H + 6)
      out.push(`<text x="${x0 + LABEL_W - 4}" y="${y + BAR_H - 4}" text-anchor="end">${esc(t)}</text>`)
      const s = stats[j]
      if (!s || !Number.isFinite(s.median)) {
        out.push(`<text x="${x0 + LABEL_W + 2}" y="${y + BAR_H - 4}" fill="#999">not measured</text>`)
        return
      }
      const sx = (v: number): number => x0 + LABEL_W + (v / max) * plotW
      const w = Math.max(1, sx(s.median) - (x0 + LABEL_W))
      out.push(`<rect x="${x0 + LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLORS[j % COLORS.length]}"/>`)
      if (s.n > 1) {
        const ym = y + BAR_H / 2
        out.push(`<path d="M${sx(s.min).toFixed(1)} ${ym}H${sx(s.max).toFixed(1)}M${sx(s.min).toFixed(1)} ${ym - 4}V${ym + 4}M${sx(s.max).toFixed(1)} ${ym - 4}V${ym + 4}" stroke="#222" fill="none"/>`)
      }
      out.push(`<text x="${(sx(Math.max(s.max, s.median)) + 4).toFixed(1)}" y="${y + BAR_H - 4}">${esc(fmt(s.median))}</text>`)
    })
  })
  out.push(`<text x="10" y="${H - 8}" fill="#555">bars: median over rounds; whiskers: min-max. Lower is better except msg/s.</text>`)
  out.push('</svg>')
  return out.join('\n')
}

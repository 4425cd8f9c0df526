// Number formatting and markdown tables for the benchmark reports.

export const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
export const fixed = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')
export const us = (n) => (Number.isFinite(n) ? (n >= 10_000 ? `${(n / 1000).toFixed(1)} ms` : `${n.toFixed(0)} µs`) : 'n/a')
export const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : 'n/a')
export const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a')

export function bytes(n) {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`
  if (n >= 1000) return `${(n / 1000).toFixed(1)} KB`
  return `${n} B`
}

/**
 * @param {string[]} header
 * @param {Array<Array<string | number>>} rows
 * @param {Array<'l' | 'r'>} [align]
 */
export function markdownTable(header, rows, align = header.map((_, i) => (i === 0 ? 'l' : 'r'))) {
  const cells = [header, ...rows].map((r) => r.map((c) => String(c)))
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => r[i].length)))
  const line = (r) =>
    '| ' + r.map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ') + ' |'
  const rule = '| ' + widths.map((w, i) => (align[i] === 'r' ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ') + ' |'
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n')
}

/**
 * The shape of reports/bench.json, and the chart drawn from it (docs/performance.svg): one panel per row, one bar
 * per library, each panel scaled to its own largest value (rows have different units).
 */

export interface Entry {
  readonly who: string
  readonly how: string
  readonly value: number
  readonly p50Micros?: number
  readonly p99Micros?: number
  readonly meanMicros?: number
  /** What the tokens keep, by heap-snapshot diff: the objects added, without the JIT's code and metadata. */
  readonly heapBytesPerToken?: number
  /** The same by `heapUsed` (data spaces, settled): the JIT's metadata and its churn move it by ±200 bytes per token. */
  readonly heapUsedBytesPerToken?: number
  /** CPU time of the measuring process (client and in-process server) per operation. */
  readonly cpuMillisPerOp?: number
}

export interface Row {
  readonly id: string
  readonly title: string
  readonly unit: string
  readonly better: "higher" | "lower"
  readonly goal: string
  readonly entries: ReadonlyArray<Entry>
}

export interface Report {
  readonly node: string
  readonly date: string
  readonly cachedCalls: number
  readonly azureCalls: number
  readonly scopes: number
  readonly rows: ReadonlyArray<Row>
}

const order = ["sdk", "runtime", "fiber", "scopes", "heap", "cold", "import", "cli", "eviction"]

const escape = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const colour = (who: string) =>
  who.startsWith("effect-azure-identity") ? "#2f6fdf" : who.startsWith("@azure") ? "#d9822b" : "#7a7a7a"

const format = (n: number, unit: string) => {
  const digits = n >= 100 ? 0 : n >= 10 ? 1 : 2
  return `${n.toLocaleString("en-US", { maximumFractionDigits: digits })} ${unit}`
}

/** The SVG chart of a report, as text. */
export const renderSvg = (report: Report): string => {
  const width = 900
  const labelWidth = 300
  const barMax = width - labelWidth - 190
  const barHeight = 18
  const rows = [...report.rows].sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id))
  const parts: Array<string> = []
  let y = 40
  for (const row of rows) {
    parts.push(
      `<text x="10" y="${y}" font-weight="bold">${escape(row.title)}</text>`,
      `<text x="10" y="${y + 16}" fill="#555">${escape(`${row.better} is better; goal: ${row.goal}`)}</text>`
    )
    y += 26
    const max = Math.max(...row.entries.map((e) => e.value), Number.MIN_VALUE)
    for (const entry of row.entries) {
      const w = Math.max(1, Math.round((entry.value / max) * barMax))
      const extra = entry.p50Micros === undefined ? "" : `, p50 ${entry.p50Micros.toFixed(2)} µs`
      parts.push(
        `<text x="10" y="${y + 13}">${escape(entry.who)}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${w}" height="${barHeight}" fill="${colour(entry.who)}"/>`,
        `<text x="${labelWidth + w + 6}" y="${y + 13}">${escape(format(entry.value, row.unit) + extra)}</text>`
      )
      y += barHeight + 6
    }
    y += 18
  }
  const height = y
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${
      escape(`npm run bench, ${report.date.slice(0, 10)}, Node ${report.node}: one run, side by side`)
    }</text>`,
    ...parts,
    "</svg>",
    ""
  ].join("\n")
}

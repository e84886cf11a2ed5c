/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`, or `BENCH_PROFILE=<dir> npm run bench`): self time per
 * function (name, file, line), the top `N` (default 30), as a share of the sampled time.
 *
 * `npx tsx bench/profileSummary.ts <file.cpuprofile> [N] [filter]`: `filter` keeps only samples whose stack holds a
 * frame whose function name contains it (e.g. `getToken`), to look at one row of a profile with several.
 */
import { readFileSync } from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: { functionName: string; url: string; lineNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const [file, topArg, filter] = process.argv.slice(2)
if (file === undefined) throw new Error("usage: profileSummary.ts <file.cpuprofile> [N] [filter]")
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const label = (n: Node) => {
  const url = n.callFrame.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench)\//, "$1/")
  return `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`
}
const matches = (id: number) => {
  if (filter === undefined) return true
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    if (byId.get(at)!.callFrame.functionName.includes(filter)) return true
  }
  return false
}

const self = new Map<string, number>()
let total = 0
profile.samples.forEach((id, i) => {
  if (!matches(id)) return
  const micros = profile.timeDeltas[i] ?? 0
  total += micros
  const key = label(byId.get(id)!)
  self.set(key, (self.get(key) ?? 0) + micros)
})
const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))
console.log(`total sampled: ${(total / 1000).toFixed(0)} ms${filter === undefined ? "" : ` (stacks with ${filter})`}`)
for (const [key, micros] of top) {
  console.log(
    `${((micros / total) * 100).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(1).padStart(8)} ms  ${key}`
  )
}

/**
 * Groups a V8 `.cpuprofile` by where the time is spent: self time per package or source file, and inclusive time of
 * the frames whose function name or file matches each of the given patterns.
 *
 * `npx tsx bench/profileGroups.ts <file.cpuprofile> [pattern …]` (a pattern is `name=regexp`, matched against
 * `function file:line` of every frame on the stack).
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
const [file, ...patterns] = process.argv.slice(2)
if (file === undefined) throw new Error("usage: profileGroups.ts <file.cpuprofile> [name=regexp …]")
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const label = (n: Node) => {
  const url = n.callFrame.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench)\//, "$1/")
  return `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`
}
const group = (n: Node) => {
  const url = n.callFrame.url
  if (url === "") return n.callFrame.functionName || "(native)"
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?:dist\/(?:esm|cjs)\/)?(.*)$/.exec(url)
  if (pkg !== null) {
    const rest = pkg[2]!.replace(/\.m?js$/, "")
    return pkg[1] === "effect" || pkg[1]!.startsWith("@effect/") ? `${pkg[1]}/${rest}` : pkg[1]!
  }
  if (url.startsWith("node:")) return url.replace(/^node:internal\//, "node:").replace(/\/[^/]*$/, "")
  return url.replace(/^file:\/\/.*?\/(src|bench)\//, "$1/")
}
const rules = patterns.map((p) => {
  const at = p.indexOf("=")
  return { name: p.slice(0, at), re: new RegExp(p.slice(at + 1)) }
})
const self = new Map<string, number>()
const inclusive = new Map<string, number>()
let total = 0
profile.samples.forEach((id, i) => {
  const micros = profile.timeDeltas[i] ?? 0
  const leaf = byId.get(id)!
  if (leaf.callFrame.functionName === "(idle)") return
  total += micros
  const g = group(leaf)
  self.set(g, (self.get(g) ?? 0) + micros)
  const hit = new Set<string>()
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const l = label(byId.get(at)!)
    for (const r of rules) if (r.re.test(l)) hit.add(r.name)
  }
  for (const name of hit) inclusive.set(name, (inclusive.get(name) ?? 0) + micros)
})
const show = (m: Map<string, number>, top: number) => {
  for (const [key, micros] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((micros / total) * 100).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(1).padStart(8)} ms  ${key}`)
  }
}
console.log(`busy (not idle): ${(total / 1000).toFixed(0)} ms\n\nself time by package / file:`)
show(self, 40)
if (rules.length > 0) {
  console.log("\ninclusive time by pattern:")
  show(inclusive, rules.length)
}

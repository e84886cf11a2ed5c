/**
 * What a run added to the heap: `npx tsx bench/heapDiff.ts before.heapsnapshot after.heapsnapshot [N] [per]` counts
 * the objects present in the second snapshot and not in the first, minus those gone from the first (V8 keeps object
 * ids stable within a process), grouped by type and name, with their count and shallow size, biggest first; `per` divides every figure (e.g. by
 * the number of tokens). Take the snapshots with `BENCH_HEAP_SNAPSHOTS=<dir> BENCH_ONLY=scopes npm run bench`.
 */
import { readFileSync } from "node:fs"

interface Snapshot {
  readonly snapshot: {
    readonly meta: { readonly node_fields: ReadonlyArray<string>; readonly node_types: ReadonlyArray<unknown> }
  }
  readonly nodes: ReadonlyArray<number>
  readonly strings: ReadonlyArray<string>
}

const [beforeFile, afterFile, topArg, perArg] = process.argv.slice(2)
if (beforeFile === undefined || afterFile === undefined) {
  throw new Error("usage: heapDiff.ts <before.heapsnapshot> <after.heapsnapshot> [N] [per]")
}
const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as Snapshot

const walk = (s: Snapshot, each: (type: string, name: string, id: number, size: number) => void) => {
  const fields = s.snapshot.meta.node_fields
  const types = s.snapshot.meta.node_types[0] as ReadonlyArray<string>
  const width = fields.length
  const [typeAt, nameAt, idAt, sizeAt] = ["type", "name", "id", "self_size"].map((f) => fields.indexOf(f))
  for (let i = 0; i < s.nodes.length; i += width) {
    each(types[s.nodes[i + typeAt!]!]!, s.strings[s.nodes[i + nameAt!]!]!, s.nodes[i + idAt!]!, s.nodes[i + sizeAt!]!)
  }
}

const labelOf = (type: string, name: string, size: number) =>
  type === "string" || type === "concatenated string" || type === "sliced string"
    ? `${type} (${size > 1000 ? "> 1000 bytes" : "≤ 1000 bytes"})`
    : `${type} ${type !== "code" ? name.slice(0, 60) : ""}`
// objects of the first snapshot, by id; those still there in the second are not counted, those gone are subtracted
const before = new Map<number, readonly [string, number]>()
walk(read(beforeFile), (type, name, id, size) => before.set(id, [labelOf(type, name, size), size]))
const groups = new Map<string, { count: number; size: number }>()
let total = 0
const add = (label: string, count: number, size: number) => {
  const g = groups.get(label) ?? { count: 0, size: 0 }
  g.count += count
  g.size += size
  groups.set(label, g)
  total += size
}
walk(read(afterFile), (type, name, id, size) => {
  if (before.delete(id)) return
  add(labelOf(type, name, size), 1, size)
})
for (const [label, size] of before.values()) add(label, -1, -size)
const per = Number(perArg ?? 1)
console.log(`net: ${(total / per).toFixed(0)} bytes${per === 1 ? "" : ` per ${per}th`}`)
console.log("| what | count | bytes |\n| --- | ---: | ---: |")
for (
  const [label, g] of [...groups].sort((a, b) => Math.abs(b[1].size) - Math.abs(a[1].size)).slice(
    0,
    Number(topArg ?? 30)
  )
) {
  console.log(`| ${label} | ${(g.count / per).toFixed(2)} | ${(g.size / per).toFixed(1)} |`)
}

/**
 * What a run added to the heap: `npx tsx bench/heapDiff.ts before.heapsnapshot after.heapsnapshot [N] [per]` counts
 * the objects present in the second snapshot and not in the first, minus those gone from the first (V8 keeps object
 * ids stable within a process), grouped by type and name, with their count and shallow size, biggest first; `per`
 * divides every figure (e.g. by the number of tokens). Take the snapshots with
 * `BENCH_HEAP_SNAPSHOTS=<dir> BENCH_ONLY=scopes npm run bench` (`base-` files: the raw client's).
 */
import { diff, objectBytes } from "./heapSnapshot.js"

const [beforeFile, afterFile, topArg, perArg] = process.argv.slice(2)
if (beforeFile === undefined || afterFile === undefined) {
  throw new Error("usage: heapDiff.ts <before.heapsnapshot> <after.heapsnapshot> [N] [per]")
}
const groups = diff(beforeFile, afterFile)
const per = Number(perArg ?? 1)
const total = groups.reduce((sum, g) => sum + g.size, 0)
const each = per === 1 ? "" : ` per ${per}th`
console.log(
  `net: ${(total / per).toFixed(0)} bytes${each}; without code (what the JIT made): ${
    (objectBytes(groups) / per).toFixed(0)
  } bytes${each}`
)
console.log("| what | count | bytes |\n| --- | ---: | ---: |")
for (const g of groups.slice(0, Number(topArg ?? 30))) {
  console.log(`| ${g.label} | ${(g.count / per).toFixed(2)} | ${(g.size / per).toFixed(1)} |`)
}

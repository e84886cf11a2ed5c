/**
 * Import cost of the library, as an app pays it: the library is compiled (tsc, as published) into tmp/bench-dist,
 * then fresh Node processes import `effect`, `@effect/platform` and `@effect/platform-node` (what an Effect app on
 * Node already loads) and time what `effect-azure-identity` and `effect-azure-identity/node` add on top. Median of
 * `IMPORT_RUNS` processes (default 5). On a loaded machine every figure grows alike: compare the library with the
 * baseline of the same run.
 */
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import type { Row } from "./report.js"

const root = join(import.meta.dirname, "..")
const out = join(root, "tmp", "bench-dist")

export const measureImportCost = (): Row => {
  rmSync(out, { recursive: true, force: true })
  execFileSync(process.execPath, [
    join(root, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    join(root, "tsconfig.build.json"),
    "--outDir",
    out,
    "--declaration",
    "false",
    "--declarationMap",
    "false",
    "--sourceMap",
    "false"
  ], { stdio: "inherit" })
  const lib = pathToFileURL(join(out, "index.js")).href
  const node = pathToFileURL(join(out, "node.js")).href
  const script = `
    const t0 = performance.now()
    await import("effect")
    const t1 = performance.now()
    await import("@effect/platform")
    await import("@effect/platform-node")
    const t2 = performance.now()
    await import(${JSON.stringify(lib)})
    const t3 = performance.now()
    await import(${JSON.stringify(node)})
    const t4 = performance.now()
    console.log(JSON.stringify({ effect: t1 - t0, platform: t2 - t1, lib: t3 - t2, node: t4 - t3 }))
  `
  const runs = Number(process.env.IMPORT_RUNS ?? 5)
  const samples: Array<{ effect: number; platform: number; lib: number; node: number }> = []
  for (let i = 0; i < runs; i++) {
    const text = execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root, encoding: "utf8" })
    samples.push(JSON.parse(text))
  }
  const median = (f: (s: (typeof samples)[number]) => number) => {
    const sorted = samples.map(f).sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)]!
  }
  rmSync(out, { recursive: true, force: true })
  return {
    id: "import",
    title: "import cost, median of fresh processes (ms)",
    unit: "ms",
    better: "lower",
    goal: "the library ≤ 30 ms over an app that imports effect, @effect/platform, @effect/platform-node",
    entries: [
      { who: "effect (index)", how: "await import(\"effect\")", value: median((s) => s.effect) },
      {
        who: "@effect/platform + platform-node",
        how: "after effect",
        value: median((s) => s.platform)
      },
      { who: "effect-azure-identity", how: "after the three above", value: median((s) => s.lib) },
      { who: "effect-azure-identity/node", how: "after all of the above", value: median((s) => s.node) }
    ]
  }
}

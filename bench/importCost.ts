/**
 * Import cost of the library, as an app pays it: the library is built as published (scripts/build.mjs: tsc, then
 * esbuild's bundle of the entry points) into tmp/bench-dist,
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
  // the published form: tsc, then the esbuild bundle of scripts/build.mjs (what `npm run build` and `prepack` make)
  execFileSync(process.execPath, [join(root, "scripts", "build.mjs"), out, "--no-declarations"], { stdio: "inherit" })
  const lib = pathToFileURL(join(out, "index.js")).href
  const node = pathToFileURL(join(out, "node.js")).href
  const script = `
    const t0 = performance.now()
    await import("effect")
    const t1 = performance.now()
    await import("@effect/platform")
    await import("@effect/platform-node")
    const t2 = performance.now()
    const c2 = process.cpuUsage()
    await import(${JSON.stringify(lib)})
    const t3 = performance.now()
    const c3 = process.cpuUsage(c2)
    await import(${JSON.stringify(node)})
    const t4 = performance.now()
    console.log(JSON.stringify({
      effect: t1 - t0, platform: t2 - t1, lib: t3 - t2, libCpu: (c3.user + c3.system) / 1000, node: t4 - t3
    }))
  `
  const runs = Number(process.env.IMPORT_RUNS ?? 5)
  const samples: Array<{ effect: number; platform: number; lib: number; libCpu: number; node: number }> = []
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
      {
        who: "effect-azure-identity, CPU time",
        how: "process.cpuUsage (user + system) around the same import",
        value: median((s) => s.libCpu)
      },
      { who: "effect-azure-identity/node", how: "after all of the above", value: median((s) => s.node) }
    ]
  }
}

/**
 * Import cost of the library, as an app pays it: the library is built as published (scripts/build.mjs: tsc, then
 * esbuild's bundle of the entry points) into tmp/bench-dist,
 * then fresh Node processes import `effect`, `@effect/platform` and `@effect/platform-node` (what an Effect app on
 * Node already loads) and time what `effect-azure-identity` and `effect-azure-identity/node` add on top. Median of
 * `IMPORT_RUNS` processes (default 5). On a loaded machine every figure grows alike: compare the library with the
 * baseline of the same run.
 *
 * `IMPORT_BASE=<commit>` also builds that commit's library (its `src` and `scripts/build.mjs`, from `git archive`) and
 * alternates the processes between the two builds (before and after in one run, the same load): the row then has the
 * base's wall and CPU time too, and the median of what each back-to-back pair saved (base − now).
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, rmSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import type { Row } from "./report.js"

const root = join(import.meta.dirname, "..")
const out = join(root, "tmp", "bench-dist")

export const measureImportCost = (): Row => {
  rmSync(out, { recursive: true, force: true })
  // the published form: tsc, then the esbuild bundle of scripts/build.mjs (what `npm run build` and `prepack` make)
  execFileSync(process.execPath, [join(root, "scripts", "build.mjs"), out, "--no-declarations"], { stdio: "inherit" })
  const base = process.env.IMPORT_BASE
  if (base !== undefined) buildBase(base)
  const scriptFor = (dist: string) =>
    script(pathToFileURL(join(dist, "index.js")).href, pathToFileURL(join(dist, "node.js")).href)
  const runs = Number(process.env.IMPORT_RUNS ?? 5)
  const samples: Array<Sample> = []
  const baseSamples: Array<Sample> = []
  const run = (dist: string) =>
    JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", scriptFor(dist)], { cwd: root, encoding: "utf8" })
    ) as Sample
  for (let i = 0; i < runs; i++) {
    if (base === undefined) samples.push(run(out))
    else if (i % 2 === 0) {
      samples.push(run(out))
      baseSamples.push(run(baseOut))
    } else {
      baseSamples.push(run(baseOut))
      samples.push(run(out))
    }
  }
  const median = (values: ReadonlyArray<number>) => {
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)]!
  }
  const of = (f: (s: Sample) => number) => median(samples.map(f))
  rmSync(out, { recursive: true, force: true })
  rmSync(baseWork, { recursive: true, force: true })
  rmSync(baseOut, { recursive: true, force: true })
  return {
    id: "import",
    title: "import cost, median of fresh processes (ms)",
    unit: "ms",
    better: "lower",
    goal: "the library ≤ 30 ms over an app that imports effect, @effect/platform, @effect/platform-node",
    entries: [
      { who: "effect (index)", how: "await import(\"effect\")", value: of((s) => s.effect) },
      {
        who: "@effect/platform + platform-node",
        how: "after effect",
        value: of((s) => s.platform)
      },
      { who: "effect-azure-identity", how: "after the three above", value: of((s) => s.lib) },
      {
        who: "effect-azure-identity, CPU time",
        how: "process.cpuUsage (user + system) around the same import",
        value: of((s) => s.libCpu)
      },
      { who: "effect-azure-identity/node", how: "after all of the above", value: of((s) => s.node) },
      ...(base === undefined ? [] : [
        {
          who: `effect-azure-identity at ${base}`,
          how: "the same, alternating processes with the above",
          value: median(baseSamples.map((s) => s.lib))
        },
        {
          who: `effect-azure-identity at ${base}, CPU time`,
          how: "the same",
          value: median(baseSamples.map((s) => s.libCpu))
        },
        {
          who: `saved over ${base}, wall`,
          how: "median of base − now over the back-to-back pairs",
          value: median(samples.map((s, i) => baseSamples[i]!.lib - s.lib))
        },
        {
          who: `saved over ${base}, CPU time`,
          how: "the same, CPU time",
          value: median(samples.map((s, i) => baseSamples[i]!.libCpu - s.libCpu))
        }
      ])
    ]
  }
}

interface Sample {
  readonly effect: number
  readonly platform: number
  readonly lib: number
  readonly libCpu: number
  readonly node: number
}

const baseWork = join(root, "tmp", "bench-base")
const baseOut = join(root, "tmp", "bench-dist-base")

/** `IMPORT_BASE`: that commit's `src` and build script, built as published into tmp/bench-dist-base. */
const buildBase = (commit: string) => {
  rmSync(baseWork, { recursive: true, force: true })
  rmSync(baseOut, { recursive: true, force: true })
  mkdirSync(baseWork, { recursive: true })
  const files = ["src", "scripts/build.mjs", "tsconfig.json", "tsconfig.build.json", "package.json"]
  const archive = execFileSync("git", ["archive", commit, ...files], { cwd: root, maxBuffer: 64 * 1024 * 1024 })
  execFileSync("tar", ["-x", "-C", baseWork], { input: archive })
  symlinkSync(join(root, "node_modules"), join(baseWork, "node_modules"))
  execFileSync(process.execPath, [join(baseWork, "scripts", "build.mjs"), baseOut, "--no-declarations"], {
    stdio: "inherit"
  })
}

const script = (lib: string, node: string) => `
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

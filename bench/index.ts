/**
 * `npm run bench`: every row of docs/performance.md in one run, side by side with `@azure/identity` and a raw
 * `node:https` client, against the same https token server on 127.0.0.1 (a test CA made for the run). Writes
 * reports/bench.json and regenerates docs/performance.svg.
 *
 * This file makes the CA and re-runs `bench/run.ts` in a child process with NODE_EXTRA_CA_CERTS pointing at it, so
 * both libraries trust the loopback server the normal way, then measures import cost (bench/importCost.ts). Nothing
 * leaves the machine.
 *
 * - `BENCH_ONLY=sdk,fiber,…` runs some rows only (ids: sdk, runtime, fiber, scopes, cold, import, cli); the other rows of
 *   the previous reports/bench.json are kept.
 * - `BENCH_PROFILE=<dir>` writes a V8 CPU profile of the measuring process there (read it with
 *   `npx tsx bench/profileSummary.ts <file>`).
 * - `BENCH_BASE=<dir>` also measures another copy of the library's `src` in the 1000-scope row (before and after in
 *   one run; see bench/run.ts).
 * - The rows measure the library as published: `scripts/build.mjs` builds it into tmp/bench-lib first (`BENCH_LIB`
 *   for bench/run.ts). `BENCH_SOURCES=1` measures `src` through tsx instead (to profile by file).
 */
import * as Effect from "effect/Effect"
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeCertificateAuthority } from "../test/support/tls.js"
import { measureImportCost } from "./importCost.js"
import type { Report, Row } from "./report.js"
import { renderSvg } from "./report.js"

const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim())
const runRows = only === undefined || only.some((id) => id !== "import" && id !== "cli")
const dir = mkdtempSync(join(tmpdir(), "eai-bench-"))
try {
  if (runRows) {
    const ca = await makeCertificateAuthority("effect-azure-identity bench CA")
    const leaf = await ca.issue({ commonName: "127.0.0.1", hosts: ["127.0.0.1", "localhost"] })
    writeFileSync(join(dir, "ca.pem"), ca.certPem)
    writeFileSync(join(dir, "server.pem"), leaf.certPem)
    writeFileSync(join(dir, "server.key"), leaf.keyPem)
    const profile = process.env.BENCH_PROFILE
    // the library as published (scripts/build.mjs), unless BENCH_SOURCES=1 (the sources through tsx, e.g. to profile
    // them by file)
    // inside the repository, so that the build resolves its packages from its node_modules
    const lib = join(import.meta.dirname, "..", "tmp", "bench-lib")
    if (process.env.BENCH_SOURCES !== "1") {
      console.error("bench: building the library as published (scripts/build.mjs)")
      execFileSync(process.execPath, [
        join(import.meta.dirname, "..", "scripts", "build.mjs"),
        lib,
        "--no-declarations"
      ], {
        stdio: "inherit"
      })
    }
    const child = spawnSync(process.execPath, [
      "--expose-gc",
      ...(profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]),
      "--import",
      "tsx",
      join(import.meta.dirname, "run.ts"),
      dir,
      ...process.argv.slice(2)
    ], {
      stdio: "inherit",
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: join(dir, "ca.pem"),
        ...(process.env.BENCH_SOURCES === "1" ? {} : { BENCH_LIB: lib })
      }
    })
    if (child.status !== 0) throw new Error(`bench/run.ts failed (${child.status ?? child.signal})`)
  }
  /** Puts `row` in reports/bench.json in place of the previous run's, and prints it. */
  const keep = (row: Row) => {
    mkdirSync("reports", { recursive: true })
    const report: Report = existsSync("reports/bench.json")
      ? JSON.parse(readFileSync("reports/bench.json", "utf8")) as Report
      : { node: process.version, date: new Date().toISOString(), cachedCalls: 0, azureCalls: 0, scopes: 0, rows: [] }
    writeFileSync(
      "reports/bench.json",
      JSON.stringify({ ...report, rows: [...report.rows.filter((r) => r.id !== row.id), row] }, null, 2)
    )
    console.log(`\n### ${row.title}\n\ngoal: ${row.goal}\n`)
    for (const e of row.entries) console.log(`- ${e.who} (${e.how}): ${e.value.toFixed(1)} ms`)
  }
  if (only === undefined || only.includes("import")) {
    console.error("bench: import cost")
    keep(measureImportCost())
  }
  if (only === undefined || only.includes("cli")) {
    // the command line as published: the root package and the emulator package built (`npm run build`)
    console.error("bench: CLI start-up (building the packages: npm run build)")
    execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] })
    const runs = Number(process.env.BENCH_CLI_RUNS ?? 7)
    // loaded here only: it starts the emulator package's sources
    const { measureStartup } = await import("../packages/emulator/scripts/startupMeasure.js")
    const measured = await Effect.runPromise(measureStartup(runs))
    const of = (label: string) => measured.find((m) => m.label === label)!
    const entry = (label: string, who: string, how: string) => ({
      who,
      how: `${how}; CPU ${of(label).cpuMs.toFixed(0)} ms; median of ${runs} fresh processes`,
      value: of(label).wallMs,
      cpuMillisPerOp: of(label).cpuMs
    })
    keep({
      id: "cli",
      title: "CLI from a fresh process (ms, wall time)",
      unit: "ms",
      better: "lower",
      goal: "--version ≤ 400 ms, token ≤ 800 ms",
      entries: [
        entry("--version", "effect-azure-identity --version", "packages/emulator dist/cli/bin.js --version"),
        entry("token", "effect-azure-identity token", "dist/cli/bin.js token, against an emulator on 127.0.0.1"),
        entry("node (empty script)", "node -e \"\" (the floor)", "an empty Node process, for scale")
      ]
    })
  }
  const report = JSON.parse(readFileSync("reports/bench.json", "utf8")) as Report
  writeFileSync(join(import.meta.dirname, "..", "docs", "performance.svg"), renderSvg(report))
  console.log("docs/performance.svg regenerated")
} finally {
  rmSync(dir, { recursive: true, force: true })
}

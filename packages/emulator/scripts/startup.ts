/**
 * CLI start-up from fresh processes: runs each command of the BUILT command line (the package's bin,
 * `dist/cli/bin.js`, and the unbundled `dist/bin.js` it is made from; run `npm run build` at the root first) `N` times, one process after another, and prints the median wall time and the median CPU time
 * (user + system, as the process itself measured it at exit; it stays meaningful on a loaded machine).
 * `token` runs against an emulator started in this process (the `environment` variables, so `DefaultAzureCredential`
 * stops at `EnvironmentCredential`; nothing leaves 127.0.0.1).
 *
 * `npx tsx packages/emulator/scripts/startup.ts [N]` (default 10).
 */
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import * as IdentityEmulator from "../src/IdentityEmulator.js"

const runs = Number(process.argv[2] ?? 10)
// the package's bin (bundled by scripts/bundle-cli.mjs) and, for comparison, tsc's output it is bundled from
const bin = path.resolve(import.meta.dirname, "../dist/cli/bin.js")
const unbundled = path.resolve(import.meta.dirname, "../dist/bin.js")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-startup-"))
const cpuFile = path.join(dir, "cpu")
// written by the measured process as it exits: its own CPU time in microseconds
const hook = path.join(dir, "cpu.mjs")
fs.writeFileSync(
  hook,
  `import { writeFileSync } from "node:fs"\n` +
    `process.on("exit", () => { const u = process.cpuUsage(); writeFileSync(process.env.STARTUP_CPU_FILE, String(u.user + u.system)) })\n`
)

interface Sample {
  readonly wallMs: number
  readonly cpuMs: number
}

const once = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<Sample>((resolve, reject) => {
    fs.rmSync(cpuFile, { force: true })
    const start = performance.now()
    const child = spawn(process.execPath, ["--import", hook, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env, STARTUP_CPU_FILE: cpuFile },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => {
      const wallMs = performance.now() - start
      if (code !== 0) return reject(new Error(`${args.join(" ")} exited with ${code}: ${stderr}`))
      resolve({ wallMs, cpuMs: Number(fs.readFileSync(cpuFile, "utf8")) / 1000 })
    })
  })

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const program = Effect.gen(function*() {
  for (const file of [bin, unbundled]) {
    if (!fs.existsSync(file)) return yield* Effect.dieMessage(`${file} is missing: run \`npm run build\` first`)
  }
  const emulator = yield* IdentityEmulator.make()
  const rows: ReadonlyArray<readonly [string, ReadonlyArray<string>, Record<string, string>]> = [
    ["node (empty script)", ["-e", ""], {}],
    ["--version", [bin, "--version"], {}],
    ["--help", [bin, "--help"], {}],
    ["token", [bin, "token"], emulator.envFor("environment")],
    ["--help (unbundled dist/bin.js)", [unbundled, "--help"], {}],
    ["token (unbundled dist/bin.js)", [unbundled, "token"], emulator.envFor("environment")]
  ]
  console.log(
    `CLI start-up, ${runs} fresh processes each, medians (${os.cpus().length} CPUs, load ${
      os.loadavg()[0]!.toFixed(1)
    }):`
  )
  console.log(`| command | wall | CPU (user + system) |\n| --- | ---: | ---: |`)
  for (const [label, args, env] of rows) {
    yield* Effect.promise(() => once(args, env)) // warm the file system cache
    const samples: Array<Sample> = []
    for (let i = 0; i < runs; i++) samples.push(yield* Effect.promise(() => once(args, env)))
    const wall = median(samples.map((s) => s.wallMs))
    const cpu = median(samples.map((s) => s.cpuMs))
    console.log(`| \`${label}\` | ${wall.toFixed(0)} ms | ${cpu.toFixed(0)} ms |`)
  }
}).pipe(Effect.scoped, Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exitCode = 1
})

/**
 * CLI start-up from fresh processes, measured: runs each command of the BUILT command line (the package's bin,
 * `dist/cli/bin.js`, and the unbundled `dist/bin.js` it is made from; `npm run build` at the root first) `runs`
 * times, one process after another, and gives the median wall time and the median CPU time (user + system, as the
 * process itself measured it at exit; it stays meaningful on a loaded machine). `token` runs against an emulator
 * started in this process (the `environment` variables, so `DefaultAzureCredential` stops at `EnvironmentCredential`;
 * nothing leaves 127.0.0.1). Used by `scripts/startup.ts` and by the root's `npm run bench` (its `cli` row).
 */
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import * as IdentityEmulator from "../src/IdentityEmulator.js"

/** The package's bin (bundled by scripts/bundle-cli.mjs) and tsc's output it is bundled from. */
export const bin = path.resolve(import.meta.dirname, "../dist/cli/bin.js")
export const unbundled = path.resolve(import.meta.dirname, "../dist/bin.js")

export interface Measured {
  readonly label: string
  readonly wallMs: number
  readonly cpuMs: number
}

interface Sample {
  readonly wallMs: number
  readonly cpuMs: number
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/**
 * The medians of `runs` fresh processes for each command: the empty `node` (the floor), `--version`, `--help`,
 * `token`, and with `unbundled` the same through `dist/bin.js`.
 */
export const measureStartup = (runs: number, options: { readonly unbundled?: boolean } = {}) =>
  Effect.gen(function*() {
    for (const file of options.unbundled === true ? [bin, unbundled] : [bin]) {
      if (!fs.existsSync(file)) return yield* Effect.dieMessage(`${file} is missing: run \`npm run build\` first`)
    }
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cli-startup-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const cpuFile = path.join(dir, "cpu")
    // written by the measured process as it exits: its own CPU time in microseconds
    const hook = path.join(dir, "cpu.mjs")
    fs.writeFileSync(
      hook,
      `import { writeFileSync } from "node:fs"\n` +
        `process.on("exit", () => { const u = process.cpuUsage(); writeFileSync(process.env.STARTUP_CPU_FILE, String(u.user + u.system)) })\n`
    )
    const once = (args: ReadonlyArray<string>, env: Record<string, string>) =>
      Effect.async<Sample, Error>((resume) => {
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
          if (code !== 0) return resume(Effect.fail(new Error(`${args.join(" ")} exited with ${code}: ${stderr}`)))
          resume(Effect.succeed({ wallMs, cpuMs: Number(fs.readFileSync(cpuFile, "utf8")) / 1000 }))
        })
      })
    const emulator = yield* IdentityEmulator.make()
    const commands: Array<readonly [string, ReadonlyArray<string>, Record<string, string>]> = [
      ["node (empty script)", ["-e", ""], {}],
      ["--version", [bin, "--version"], {}],
      ["--help", [bin, "--help"], {}],
      ["token", [bin, "token"], emulator.envFor("environment")]
    ]
    if (options.unbundled === true) {
      commands.push(
        ["--help (unbundled dist/bin.js)", [unbundled, "--help"], {}],
        ["token (unbundled dist/bin.js)", [unbundled, "token"], emulator.envFor("environment")]
      )
    }
    const results: Array<Measured> = []
    for (const [label, args, env] of commands) {
      yield* once(args, env) // warm the file system cache
      const samples: Array<Sample> = []
      for (let i = 0; i < runs; i++) samples.push(yield* once(args, env))
      results.push({
        label,
        wallMs: median(samples.map((s) => s.wallMs)),
        cpuMs: median(samples.map((s) => s.cpuMs))
      })
    }
    return results
  }).pipe(Effect.scoped)

/**
 * The shell blocks of README.md and docs/cli.md that start the emulator in the background, wait for its exports
 * file, use it and stop it: run as written (with their /tmp paths moved to a temporary directory) by `/bin/sh`,
 * with stubs in place of `npm` and `effect-azure-identity`. When the emulator fails to start, the block says so
 * and ends at once instead of waiting forever; when it starts, the commands see its variables and it is stopped.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")

/** The ```sh block of `file` that starts the emulator with --exports-file. */
const blockOf = (file: string): string => {
  const text = fs.readFileSync(path.join(root, file), "utf8")
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!)
  const found = blocks.filter((b) => b.includes("--exports-file /tmp/emulator.env") && b.includes("kill"))
  assert.strictEqual(found.length, 1, `${file}: one emulator block`)
  return found[0]!
}

/** Stands in for `npm run cli -- <command> …` and `effect-azure-identity <command> …`. */
const stub = `#!/bin/sh
[ "$1" = run ] && shift 3
cmd=$1; shift
case "$cmd" in
  emulator)
    if [ "$STUB_MODE" = fail ]; then echo "stub emulator: listen EADDRINUSE" >&2; exit 1; fi
    while [ $# -gt 0 ]; do
      case "$1" in --exports-file) env_file=$2; shift ;; --pid-file) pid_file=$2; shift ;; esac
      shift
    done
    sleep 30 & s=$!
    trap 'kill $s; rm -f "$env_file" "$pid_file"; exit 0' TERM
    echo $$ > "$pid_file"
    echo "export STUB_READY=yes" > "$env_file.tmp" && mv "$env_file.tmp" "$env_file"
    wait $s
    ;;
  *) echo "ran $cmd with STUB_READY=$STUB_READY" ;;
esac
`

const runBlock = (block: string, mode: "fail" | "start") =>
  Effect.acquireUseRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "emulator-block-"))),
    (dir) =>
      Effect.async<{ readonly output: string; readonly filesLeft: ReadonlyArray<string> }>((resume) => {
        const bin = path.join(dir, "bin")
        fs.mkdirSync(bin)
        for (const name of ["npm", "effect-azure-identity"]) {
          fs.writeFileSync(path.join(bin, name), stub, { mode: 0o755 })
        }
        const script = block.replaceAll("/tmp/emulator.", `${dir}/emulator.`)
        const child = spawn("/bin/sh", ["-c", script], {
          env: { PATH: `${bin}:${process.env["PATH"] ?? "/usr/bin:/bin"}`, STUB_MODE: mode },
          stdio: ["ignore", "pipe", "pipe"]
        })
        let output = ""
        child.stdout.on("data", (chunk) => (output += chunk))
        child.stderr.on("data", (chunk) => (output += chunk))
        // "close" waits for every holder of the pipes, the background stub and its sleep included: the files
        // left then are left for good
        child.on(
          "close",
          () => resume(Effect.succeed({ output, filesLeft: fs.readdirSync(dir).filter((f) => f !== "bin") }))
        )
        return Effect.sync(() => child.kill("SIGKILL"))
      }),
    (dir) =>
      Effect.sync(() => {
        // a stub emulator left running by a failed assertion is stopped
        const pidFile = path.join(dir, "emulator.pid")
        if (fs.existsSync(pidFile)) {
          try {
            process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGTERM")
          } catch {
            // already gone
          }
        }
        fs.rmSync(dir, { recursive: true, force: true })
      })
  )

describe("the emulator shell blocks", () => {
  for (const file of ["README.md", "docs/cli.md"]) {
    // the bound of the blocks' wait is 30 s: a test that ends well before it proves the block did not wait it out
    it.live(
      `${file}: an emulator that fails to start ends the block at once, with a message`,
      () =>
        Effect.gen(function*() {
          const run = yield* runBlock(blockOf(file), "fail")
          assert.include(run.output, "stub emulator: listen EADDRINUSE")
          assert.include(run.output, "The emulator did not start")
          assert.notInclude(run.output, "ran token")
        }),
      15_000
    )

    it.live(
      `${file}: a started emulator is waited for, used with its variables and stopped`,
      () =>
        Effect.gen(function*() {
          const run = yield* runBlock(blockOf(file), "start")
          assert.notInclude(run.output, "did not start")
          assert.include(run.output, "ran token with STUB_READY=yes")
          assert.include(run.output, "ran doctor with STUB_READY=yes")
          // the block's kill stopped it (else the run would not have ended): the stub removed its files on SIGTERM
          assert.deepStrictEqual(run.filesLeft, [])
        }),
      15_000
    )
  }
})

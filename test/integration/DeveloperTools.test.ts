/**
 * AzureCliCredential and AzureDeveloperCliCredential against real child processes: fake `az` / `azd` shell scripts
 * in a temporary directory put first on the child's PATH (through the credential's `environment` option; the test
 * process's own environment is never changed).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { TokenCredential } from "../../src/index.js"
import { AzureCliCredential, AzureDeveloperCliCredential } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import {
  assertExited,
  assertToken,
  callLog,
  getTokenExit,
  unavailableReasonOf,
  writeStub
} from "../support/developerTool.js"
import { guardedNodeArgs } from "../support/helpers.js"

const SCOPE = "https://management.azure.com/.default"
const TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJmYWtlIjoiY2xpIn0.ZmFrZS1zaWduYXR1cmU"
const EXPIRES = 4102444800 // 2100-01-01T00:00:00Z

let root: string
const dirs: Record<string, string> = {}

/** A directory holding executable `az` and `azd` scripts with the given bodies. */
const toolDir = (label: string, az: string, azd: string): string => {
  const dir = path.join(root, label)
  fs.mkdirSync(dir)
  writeStub(dir, "az", az)
  writeStub(dir, "azd", azd)
  return dir
}

/** Records the working directory, the arguments and the colour setting, one per line. */
const record = (dir: string) =>
  `{ pwd; echo "NO_COLOR=$AZURE_CORE_NO_COLOR"; for a in "$@"; do echo "$a"; done; } > "${dir}/call.log"`

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-azure-identity-devtools-"))
  const loggedIn = path.join(root, "logged-in")
  dirs.loggedIn = toolDir(
    "logged-in",
    `${record(loggedIn)}\necho '{"accessToken":"${TOKEN}","expiresOn":"2099-12-31 23:00:00.000000",` +
      `"expires_on":${EXPIRES},"subscription":"s","tenant":"t","tokenType":"Bearer"}'`,
    `${record(loggedIn)}\necho '{"token":"${TOKEN}","expiresOn":"2100-01-01T00:00:00Z"}'`
  )
  dirs.localTime = toolDir(
    "local-time",
    `echo '{"accessToken":"${TOKEN}","expiresOn":"2096-11-27 15:00:00.000000","tokenType":"Bearer"}'`,
    "exit 1"
  )
  dirs.notLoggedIn = toolDir(
    "not-logged-in",
    "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1",
    "echo 'ERROR: fetching token: not logged in, run `azd auth login` to login' >&2\nexit 1"
  )
  const hangs = path.join(root, "hangs")
  dirs.hangs = toolDir(
    "hangs",
    `echo $$ > "${hangs}/az.pid"\nexec sleep 30`,
    `echo $$ > "${hangs}/azd.pid"\nexec sleep 30`
  )
  dirs.garbage = toolDir(
    "garbage",
    `echo "Traceback (most recent call last): accessToken=${TOKEN} <html>"`,
    `echo "{{{ ${TOKEN}"`
  )
  dirs.empty = path.join(root, "empty")
  fs.mkdirSync(dirs.empty)
  // ignores SIGTERM (so do the `sleep`s it starts: an ignored signal stays ignored across exec)
  const stubborn = path.join(root, "stubborn")
  dirs.stubborn = toolDir(
    "stubborn",
    `trap '' TERM\necho $$ > "${stubborn}/az.pid"\nwhile :; do sleep 1; done`,
    `trap '' TERM\necho $$ > "${stubborn}/azd.pid"\nwhile :; do sleep 1; done`
  )
  // answers at once and exits 0, leaving behind a child that holds stdout open and ignores SIGTERM
  const forks = path.join(root, "forks")
  dirs.forks = toolDir(
    "forks",
    `(trap '' TERM; exec sleep 30) &\necho $! > "${forks}/az-child.pid"\n` +
      `echo '{"accessToken":"${TOKEN}","expires_on":${EXPIRES},"tokenType":"Bearer"}'`,
    `(trap '' TERM; exec sleep 30) &\necho $! > "${forks}/azd-child.pid"\n` +
      `echo '{"token":"${TOKEN}","expiresOn":"2100-01-01T00:00:00Z"}'`
  )
  // the only programs the stubs may run: no `az` or `azd` of the machine can be found
  dirs.bin = path.join(root, "bin")
  fs.mkdirSync(dirs.bin)
  const sleep = ["/bin/sleep", "/usr/bin/sleep"].find((p) => fs.existsSync(p))
  if (sleep === undefined) throw new Error("no sleep(1) at /bin or /usr/bin")
  fs.symlinkSync(sleep, path.join(dirs.bin, "sleep"))
})

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true })
})

/** The stub directory and the test's own `bin` (only `sleep`): never the machine's PATH. */
const envFor = (dir: string) => ({ PATH: `${dir}:${dirs.bin}` })

const cli = (dir: string, options: AzureCliCredential.Options = {}) =>
  AzureCliCredential.layer({ environment: envFor(dir), ...options }).pipe(Layer.provide(IdentityNode.layer))

const azd = (dir: string, options: AzureDeveloperCliCredential.Options = {}) =>
  AzureDeveloperCliCredential.layer({ environment: envFor(dir), ...options }).pipe(Layer.provide(IdentityNode.layer))

const getToken = (layer: Layer.Layer<TokenCredential.TokenCredential>) => getTokenExit(layer, SCOPE)

/** `getToken` with the `az` and the `azd` of `dir` at the same time. */
const bothTools = (dir: string, processTimeout: Duration.DurationInput) =>
  Effect.all([getToken(cli(dir, { processTimeout })), getToken(azd(dir, { processTimeout }))], { concurrency: 2 })

const reasonOf = unavailableReasonOf(TOKEN, "ZmFrZS1zaWduYXR1cmU")

/** The stub's call log: its working directory (checked to be /bin) taken off, the rest (colour setting, argv). */
const argvLog = (dir: string): Array<string> => {
  const log = callLog(dir)
  assert.strictEqual(fs.realpathSync(log.shift()!), fs.realpathSync("/bin"))
  return log
}

describe("developer tools as real child processes", () => {
  it.live("az: signed in — argv, working directory /bin, no colour, token and expires_on", () =>
    Effect.gen(function*() {
      assertToken(yield* getToken(cli(dirs.loggedIn!, { tenantId: "contoso.onmicrosoft.com" })), TOKEN, EXPIRES * 1000)
      assert.deepStrictEqual(argvLog(dirs.loggedIn!), [
        "NO_COLOR=true",
        "account",
        "get-access-token",
        "--output",
        "json",
        "--resource",
        "https://management.azure.com",
        "--tenant",
        "contoso.onmicrosoft.com"
      ])
    }))

  it.live("azd: signed in — argv and token", () =>
    Effect.gen(function*() {
      assertToken(yield* getToken(azd(dirs.loggedIn!)), TOKEN, EXPIRES * 1000)
      assert.deepStrictEqual(argvLog(dirs.loggedIn!), [
        "NO_COLOR=true",
        "auth",
        "token",
        "--output",
        "json",
        "--no-prompt",
        "--scope",
        SCOPE
      ])
    }))

  it.live("not signed in", () =>
    Effect.gen(function*() {
      assert.include(reasonOf(yield* getToken(cli(dirs.notLoggedIn!))), "run `az login`")
      assert.include(reasonOf(yield* getToken(azd(dirs.notLoggedIn!))), "run `azd auth login`")
    }))

  it.live("not installed", () =>
    Effect.gen(function*() {
      assert.include(reasonOf(yield* getToken(cli(dirs.empty!))), "was not found on PATH")
      assert.include(reasonOf(yield* getToken(azd(dirs.empty!))), "was not found on PATH")
    }))

  it.live("prints garbage: unavailable, and the token is not in the message", () =>
    Effect.gen(function*() {
      assert.include(reasonOf(yield* getToken(cli(dirs.garbage!))), "not JSON")
      assert.include(reasonOf(yield* getToken(azd(dirs.garbage!))), "not JSON")
    }))

  it.live("hangs past the timeout: stopped, and the process is gone", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const [az, dev] = yield* bothTools(dirs.hangs!, "300 millis")
      const elapsed = Date.now() - started
      assert.include(reasonOf(az), "did not answer within 300ms")
      assert.include(reasonOf(dev), "did not answer within 300ms")
      assert.isBelow(elapsed, 5_000)
      assertExited(dirs.hangs!, ["az.pid", "azd.pid"])
    }))

  it.live("a tool that ignores SIGTERM is killed: no process is left once getToken returned", () =>
    Effect.gen(function*() {
      const [az, dev] = yield* bothTools(dirs.stubborn!, "300 millis")
      assert.include(reasonOf(az), "did not answer within 300ms")
      assert.include(reasonOf(dev), "did not answer within 300ms")
      assertExited(dirs.stubborn!, ["az.pid", "azd.pid"])
    }))

  it.live("a tool that exits 0 but leaves a child holding stdout: the token is used, the child is killed", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const [az, dev] = yield* bothTools(dirs.forks!, "20 seconds")
      const elapsed = Date.now() - started
      for (const exit of [az, dev]) {
        if (Exit.isFailure(exit)) throw new Error(Cause.pretty(exit.cause))
        assert.strictEqual(Redacted.value(exit.value.token), TOKEN)
      }
      // the output is used once the tool exited, after at most the drain grace and the kill grace
      assert.isBelow(elapsed, 10_000)
      assertExited(dirs.forks!, ["az-child.pid", "azd-child.pid"])
    }))

  it.live("expiresOn is read as local time: a child process with TZ=Asia/Kolkata", () =>
    Effect.gen(function*() {
      const here = path.dirname(fileURLToPath(import.meta.url))
      const script = path.resolve(here, "../support/printCliExpiry.ts")
      const stdout = yield* Effect.async<string, Error>((resume) => {
        execFile(
          process.execPath,
          [...guardedNodeArgs, script, envFor(dirs.localTime!).PATH],
          { cwd: path.resolve(here, "../.."), env: { PATH: path.dirname(process.execPath), TZ: "Asia/Kolkata" } },
          (error, out, err) => resume(error ? Effect.fail(new Error(`${error.message}\n${err}`)) : Effect.succeed(out))
        )
      })
      // 15:00 in India (UTC+05:30) is 09:30 UTC; read as UTC it would be 15:00Z
      assert.match(stdout.trim(), /^2096-11-27T09:30:00\.000Z Asia\/(Kolkata|Calcutta)$/)
    }))
})

/**
 * The `effect-azure-identity` CLI: in-process (its commands against an emulator started by the test, with the
 * emulator's variables as the ConfigProvider and a CommandExecutor that finds no `az`/`azd`), and as child
 * processes (`node --import tsx src/bin.ts …`, what `npx tsx src/bin.ts …` runs): `emulator` prints export lines,
 * `token` and `doctor` use them.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterEach, assert, beforeEach, describe, it, vi } from "@effect/vitest"
import * as IdentityNode from "effect-azure-identity/node"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { guardedNodeArgs, withEnv } from "../../../../test/support/helpers.js"
import { listen } from "../../../../test/support/loopbackServer.js"
import { mockExecutor, notFound } from "../../../../test/support/mockCommand.js"
import { makeSelfSigned } from "../../../../test/support/tls.js"
import * as IdentityEmulator from "../../src/IdentityEmulator.js"
import { colours, run } from "../../src/internal/cli/main.js"
import { decodeClaims } from "../../src/internal/cli/token.js"

const root = path.resolve(import.meta.dirname, "../..")

let out: Array<string> = []
let err: Array<string> = []
let onLog: (line: string) => void = () => {}
beforeEach(() => {
  out = []
  err = []
  onLog = () => {}
  vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
    const line = args.map(String).join(" ")
    out.push(line)
    onLog(line)
  })
  vi.spyOn(console, "error").mockImplementation((...args: Array<unknown>) => {
    err.push(args.map(String).join(" "))
  })
})
afterEach(() => {
  vi.restoreAllMocks()
})

/** Runs the CLI in-process; `az`/`azd` are never found. */
const cli = (...args: Array<string>) =>
  run(["node", "effect-azure-identity", ...args]).pipe(
    Effect.provide(mockExecutor(() => notFound).layer),
    Effect.provide(Layer.merge(IdentityNode.layer, NodeContext.layer))
  )

describe("CLI in-process", () => {
  it.live("token --json: the credential, the claims, and the raw token only with --show-token", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make()
      const secret = emulator.env.AZURE_CLIENT_SECRET!
      const code = yield* cli(
        "token",
        "--credential",
        "client-secret",
        "--scope",
        "https://vault.azure.net/.default",
        "--json"
      )
        .pipe(Effect.withConfigProvider(emulator.configProviderFor("environment")))
      assert.strictEqual(code, 0, err.join("\n"))
      const json = JSON.parse(out.join("\n"))
      assert.strictEqual(json.credential, "ClientSecretCredential")
      assert.strictEqual(json.claims.appid, emulator.clientId)
      assert.strictEqual(json.claims.aud, "https://vault.azure.net")
      assert.isUndefined(json.token)
      assert.notInclude(out.join("\n"), secret)

      out = []
      const shown = yield* cli("token", "-c", "client-secret", "--show-token").pipe(
        Effect.withConfigProvider(emulator.configProviderFor("environment"))
      )
      assert.strictEqual(shown, 0)
      const text = out.join("\n")
      assert.include(text, "credential: ClientSecretCredential")
      assert.include(text, "scope:      https://management.azure.com/.default")
      assert.match(text, /expires: +\d{4}-.*\(in \d+ min\)/)
      assert.match(text, /exp: \d+ \(\d{4}-/)
      const token = /token: +(\S+)/.exec(text)![1]!
      assert.strictEqual((yield* emulator.verifyToken(token)).tid, emulator.tenantId)
    }).pipe(Effect.scoped, withEnv({})))

  it.live("token through the default chain says which link produced the token", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make()
      const code = yield* cli("token", "--tenant", emulator.tenantId).pipe(
        Effect.withConfigProvider(emulator.configProviderFor("app-service-2019"))
      )
      assert.strictEqual(code, 0, err.join("\n"))
      assert.include(out.join("\n"), "credential: DefaultAzureCredential → ManagedIdentityCredential")
    }).pipe(Effect.scoped, withEnv({})))

  it.live("an expected failure prints the typed error's message and exits 1, without a stack trace", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make()
      const wrong = "definitely-wrong-secret"
      const code = yield* cli("token", "-c", "client-secret").pipe(withEnv(emulator.envFor("environment")))
      assert.strictEqual(code, 0)
      err = []
      const failed = yield* cli("token", "-c", "client-secret").pipe(
        withEnv({ ...emulator.envFor("environment"), AZURE_CLIENT_SECRET: wrong })
      )
      assert.strictEqual(failed, 1)
      const text = err.join("\n")
      assert.include(text, "error: ClientSecretCredential authentication failed")
      assert.include(text, "AADSTS7000215")
      assert.notInclude(text, wrong)
      assert.notMatch(text, /\n\s+at /)
      err = []
      const unconfigured = yield* cli("token", "-c", "certificate").pipe(withEnv({}))
      assert.strictEqual(unconfigured, 1)
      assert.include(err.join("\n"), "CertificateCredential is unavailable")
    }).pipe(Effect.scoped, withEnv({})))

  it.live("a bad option exits 2 and names the option, the value and the choices", () =>
    Effect.gen(function*() {
      const code = yield* cli("token", "--credential", "no-such-credential")
      assert.strictEqual(code, 2)
      const text = err.join("\n")
      assert.include(text, "--credential")
      assert.include(text, "\"no-such-credential\"")
      assert.include(text, "managed-identity")
      assert.notMatch(text, /\u001b\[/)
      err = []
      const scenario = yield* cli("emulator", "--scenario", "moon")
      assert.strictEqual(scenario, 2)
      assert.include(err.join("\n"), "--scenario: \"moon\" is not one of all, environment, username-password")
    }).pipe(withEnv({})))

  it.live("an invalid scope is reported as an invalid scope, before any credential runs", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make()
      const code = yield* cli("token", "--scope", "not a scope").pipe(withEnv(emulator.envFor("environment")))
      assert.strictEqual(code, 2)
      const text = err.join("\n")
      assert.include(text, "--scope: invalid scope \"not a scope\"")
      assert.notInclude(text, "found no credential")
      assert.lengthOf(yield* emulator.requests, 0)
      err = []
      assert.strictEqual(yield* cli("doctor", "--scope", "a\"b"), 2)
      assert.include(err.join("\n"), "--scope: invalid scope")
    }).pipe(Effect.scoped, withEnv({})))

  it.live("token -c managed-identity, and the chain, say which managed-identity source answered", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make()
      const direct = yield* cli("token", "-c", "managed-identity").pipe(withEnv(emulator.envFor("app-service-2019")))
      assert.strictEqual(direct, 0, err.join("\n"))
      assert.include(out.join("\n"), "credential: ManagedIdentityCredential\nsource:     App Service\n")
      out = []
      const shell = yield* cli("token", "-c", "managed-identity", "--json").pipe(
        withEnv(emulator.envFor("cloud-shell"))
      )
      assert.strictEqual(shell, 0, err.join("\n"))
      assert.strictEqual(JSON.parse(out.join("\n")).source, "Cloud Shell")
      out = []
      const chain = yield* cli("token").pipe(withEnv(emulator.envFor("imds")))
      assert.strictEqual(chain, 0, err.join("\n"))
      assert.include(out.join("\n"), "DefaultAzureCredential → ManagedIdentityCredential\nsource:     IMDS\n")
      out = []
      const secret = yield* cli("token", "-c", "client-secret").pipe(withEnv(emulator.envFor("environment")))
      assert.strictEqual(secret, 0, err.join("\n"))
      assert.notInclude(out.join("\n"), "source:")
    }).pipe(Effect.scoped, withEnv({})))

  it.live("doctor walks every link: why each is unavailable, and which one would be used", () =>
    Effect.gen(function*() {
      const empty = yield* IdentityEmulator.make({ managedIdentities: [] })
      const none = yield* cli("doctor").pipe(withEnv({ AZURE_POD_IDENTITY_AUTHORITY_HOST: empty.url }))
      assert.strictEqual(none, 1)
      const text = out.join("\n")
      for (const link of ["WorkloadIdentityCredential", "ManagedIdentityCredential", "AzureCliCredential"]) {
        assert.match(text, new RegExp(`${link} +unavailable`))
      }
      assert.include(text, "AZURE_FEDERATED_TOKEN_FILE")
      assert.include(text, "no link could get a token")

      out = []
      const emulator = yield* IdentityEmulator.make()
      const ok = yield* cli("doctor", "--json").pipe(withEnv(emulator.envFor("app-service-2019")))
      assert.strictEqual(ok, 0, out.join("\n"))
      const json = JSON.parse(out.join("\n"))
      const links = Object.fromEntries(json.links.map((l: { name: string; status: string }) => [l.name, l.status]))
      assert.strictEqual(links.WorkloadIdentityCredential, "unavailable")
      assert.strictEqual(links.ManagedIdentityCredential, "available")
      assert.include(json.summary, "would use ManagedIdentityCredential")

      out = []
      yield* emulator.setFault("appService2019", { status: 403 })
      const stopped = yield* cli("doctor").pipe(withEnv(emulator.envFor("app-service-2019")))
      assert.strictEqual(stopped, 1)
      assert.include(out.join("\n"), "would stop at ManagedIdentityCredential")
    }).pipe(Effect.scoped, withEnv({})))

  it.live("emulator prints export lines and runs until interrupted", () =>
    Effect.gen(function*() {
      const ready = yield* Deferred.make<void>()
      onLog = (line) => {
        if (line.includes("export AZURE_AUTHORITY_HOST=")) Deferred.unsafeDone(ready, Effect.void)
      }
      const fiber = yield* Effect.fork(cli("emulator", "--scenario", "environment"))
      yield* Deferred.await(ready)
      const exports = out.join("\n").split("\n").filter((l) => l.startsWith("export "))
      const env = Object.fromEntries(exports.map((l) => {
        const m = /^export (\w+)='(.*)'$/.exec(l)!
        return [m[1]!, m[2]!]
      }))
      assert.deepStrictEqual(Object.keys(env).sort(), [
        "AZURE_AUTHORITY_HOST",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID"
      ])
      const answer = yield* Effect.promise(() =>
        fetch(`${env.AZURE_AUTHORITY_HOST}/${env.AZURE_TENANT_ID}/v2.0/.well-known/openid-configuration`)
      )
      assert.strictEqual(answer.status, 200)
      yield* Fiber.interrupt(fiber)
    }).pipe(withEnv({})))

  it.live("emulator --tls-cert/--tls-key serves https; an unreadable file is an error, exit 1", () =>
    Effect.gen(function*() {
      const missing = yield* cli("emulator", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem")
      assert.strictEqual(missing, 1)
      assert.include(err.join("\n"), "cannot read /nonexistent/cert.pem")

      const leaf = yield* Effect.promise(() => makeSelfSigned({ commonName: "localhost", hosts: ["127.0.0.1"] }))
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cli-tls-"))),
        (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
      )
      fs.writeFileSync(path.join(dir, "cert.pem"), leaf.certPem)
      fs.writeFileSync(path.join(dir, "key.pem"), leaf.keyPem)
      const ready = yield* Deferred.make<void>()
      onLog = (line) => {
        if (line.includes("export AZURE_AUTHORITY_HOST=")) Deferred.unsafeDone(ready, Effect.void)
      }
      const fiber = yield* Effect.fork(
        cli("emulator", "--tls-cert", path.join(dir, "cert.pem"), "--tls-key", path.join(dir, "key.pem"))
      )
      yield* Deferred.await(ready)
      assert.match(out.join("\n"), /export AZURE_AUTHORITY_HOST='https:\/\/127\.0\.0\.1:\d+'/)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.scoped, withEnv({})))

  it.live("token prints a claim whose time is beyond any date as a number, and exits 0", () =>
    Effect.gen(function*() {
      const payload = Buffer.from(JSON.stringify({ aud: "https://vault.azure.net", auth_time: 1e20, iat: -1e300 }))
        .toString("base64url")
      const server = yield* listen((_request, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ token_type: "Bearer", expires_in: 3600, access_token: `e30.${payload}.sig` }))
      })
      const code = yield* cli("token", "-c", "client-secret").pipe(withEnv({
        AZURE_AUTHORITY_HOST: server.url,
        AZURE_TENANT_ID: "e0e0e0e0-0000-4000-8000-000000000001",
        AZURE_CLIENT_ID: "e0e0e0e0-0000-4000-8000-00000000a001",
        AZURE_CLIENT_SECRET: "loopback-secret"
      }))
      assert.strictEqual(code, 0, err.join("\n"))
      const text = out.join("\n")
      assert.include(text, "auth_time: 100000000000000000000")
      assert.include(text, "iat: -1e+300")
      assert.notInclude(err.join("\n"), "unexpected error")
    }).pipe(Effect.scoped, withEnv({})))

  it.live("emulator with a TLS file it cannot use, only one of the two, or a bad port exits 1 with a message, no stack", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cli-tls-bad-"))),
        (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
      )
      const cert = path.join(dir, "cert.pem")
      const key = path.join(dir, "key.pem")
      fs.writeFileSync(cert, "not a certificate")
      fs.writeFileSync(key, "-----BEGIN PRIVATE KEY-----\nkey-material-0123\n-----END PRIVATE KEY-----\n")
      const code = yield* cli("emulator", "--tls-cert", cert, "--tls-key", key)
      assert.strictEqual(code, 1)
      const stderr = err.join("\n")
      assert.include(stderr, "error: IdentityEmulator: the TLS certificate and key cannot be used")
      assert.notInclude(stderr, "unexpected error")
      assert.notMatch(stderr, /\n\s+at /)
      assert.notInclude(stderr, "key-material-0123")
      assert.lengthOf(out, 0)
      err = []
      const half = yield* cli("emulator", "--tls-cert", cert)
      assert.strictEqual(half, 1)
      assert.include(err.join("\n"), "--tls-cert and --tls-key")
      assert.lengthOf(out, 0)
      err = []
      const badPort = yield* cli("emulator", "--port", "70000")
      assert.strictEqual(badPort, 1)
      assert.include(err.join("\n"), "error: IdentityEmulator:")
      assert.notInclude(err.join("\n"), "unexpected error")
      assert.lengthOf(out, 0)
    }).pipe(Effect.scoped, withEnv({})))

  it("colours only on a terminal, and never with NO_COLOR set", () => {
    assert.isTrue(colours({ isTTY: true }, ""))
    assert.isFalse(colours({ isTTY: true }, "1"))
    assert.isFalse(colours({ isTTY: false }, ""))
    assert.isFalse(colours({}, ""))
  })

  it("decodeClaims reads JWT payloads and refuses anything else", () => {
    const payload = Buffer.from(JSON.stringify({ aud: "x", exp: 1 })).toString("base64url")
    assert.deepStrictEqual(decodeClaims(`e30.${payload}.sig`), { aud: "x", exp: 1 })
    assert.isUndefined(decodeClaims("opaque-token"))
    assert.isUndefined(decodeClaims("a.%%%.c"))
    assert.isUndefined(decodeClaims(`a.${Buffer.from("[1]").toString("base64url")}.c`))
  })
})

interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** `node --import tsx src/bin.ts …` with only the variables given (and a PATH without az/azd). */
const childEnv = (env: Record<string, string>) => ({ PATH: path.dirname(process.execPath), ...env })

const runBin = (args: ReadonlyArray<string>, env: Record<string, string>, nodeArgs: ReadonlyArray<string> = []) =>
  runChild(process.execPath, [...guardedNodeArgs, ...nodeArgs, "src/bin.ts", ...args], env)

const runChild = (command: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<Finished>((resume) => {
    const child = spawn(command, args, { cwd: root, env: childEnv(env) })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Starts `emulator` as a child process; resolves with its export lines once printed; kills it with the scope. */
const startEmulatorProcess = Effect.acquireRelease(
  Effect.async<{ child: ReturnType<typeof spawn>; env: Record<string, string>; exited: Promise<number | null> }>(
    (resume) => {
      const child = spawn(process.execPath, [...guardedNodeArgs, "src/bin.ts", "emulator", "--port", "0"], {
        cwd: root,
        env: childEnv({})
      })
      const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
      let stdout = ""
      child.stdout!.on("data", (d) => {
        stdout += d
        const lines = stdout.split("\n").filter((l) => l.startsWith("export "))
        if (lines.some((l) => l.startsWith("export AZURE_POD_IDENTITY_AUTHORITY_HOST="))) {
          const env = Object.fromEntries(lines.map((l) => {
            const m = /^export (\w+)='(.*)'$/.exec(l)!
            return [m[1]!, m[2]!]
          }))
          resume(Effect.succeed({ child, env, exited }))
        }
      })
      child.on("exit", () => resume(Effect.dieMessage(`the emulator exited early:\n${stdout}`)))
    }
  ),
  ({ child, exited }) => Effect.promise(() => (child.kill("SIGTERM"), exited))
)

describe("CLI as a child process", () => {
  it.live(
    "emulator prints export lines; token and doctor use them; failures exit 1 without a stack",
    () =>
      Effect.gen(function*() {
        const emulator = yield* startEmulatorProcess
        const env = emulator.env
        assert.match(env.AZURE_AUTHORITY_HOST!, /^http:\/\/127\.0\.0\.1:\d+$/)
        const [token, doctor, wrong] = yield* Effect.all([
          runBin(["token", "--json", "--show-token", "--scope", "https://vault.azure.net/.default"], env),
          runBin(["doctor"], env),
          runBin(["token", "--credential", "client-secret"], { ...env, AZURE_CLIENT_SECRET: "wrong-secret-xyz" })
        ], { concurrency: "unbounded" })

        assert.strictEqual(token.code, 0, token.stderr)
        const json = JSON.parse(token.stdout)
        assert.match(json.credential, /Credential$/)
        assert.strictEqual(json.claims.tid, env.AZURE_TENANT_ID)
        assert.strictEqual(json.claims.aud, "https://vault.azure.net")
        assert.match(json.token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/)

        assert.strictEqual(doctor.code, 0, doctor.stdout + doctor.stderr)
        assert.match(doctor.stdout, /AzureCliCredential +unavailable/)
        assert.include(doctor.stdout, "AZURE_CLIENT_SECRET: (set)")
        assert.notInclude(doctor.stdout, env.AZURE_CLIENT_SECRET!)
        assert.include(doctor.stdout, "AZURE_PASSWORD: (set)")
        assert.notInclude(doctor.stdout, env.AZURE_PASSWORD!)

        assert.strictEqual(wrong.code, 1)
        assert.include(wrong.stderr, "AADSTS7000215")
        assert.notInclude(wrong.stderr + wrong.stdout, "wrong-secret-xyz")
        assert.notMatch(wrong.stderr, /\n\s+at /)
      }).pipe(Effect.scoped),
    180_000
  )
})

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
  )

/** `--import` hook that appends every loaded module's URL to the file named by RECORD_MODULES_FILE. */
const recorder = path.join(import.meta.dirname, "../support/recordModules.mjs")

/** Runs the CLI as a child process and returns what it printed and the URLs of the modules it loaded. */
const loadedModules = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("cli-modules-")
    const file = path.join(dir, "modules.txt")
    const result = yield* runBin(args, { ...env, RECORD_MODULES_FILE: file }, ["--import", recorder])
    const modules = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []
    return { ...result, modules }
  })

/** The emulator's and the credentials' modules: what `--version` and `--help` must not load. */
const heavy = (url: string) => /IdentityEmulator|\/internal\/emulator\/|Credential[^/]*$/.test(url)

describe("CLI start-up loads only what the command uses", () => {
  it.live("--version loads neither the command line, nor the emulator, nor a credential", () =>
    Effect.gen(function*() {
      const { code, modules, stdout } = yield* loadedModules(["--version"])
      assert.strictEqual(code, 0)
      assert.strictEqual(stdout, "0.1.0\n")
      assert.isTrue(modules.some((m) => m.endsWith("/src/bin.ts")), modules.join("\n"))
      assert.deepStrictEqual(modules.filter(heavy), [])
      assert.deepStrictEqual(modules.filter((m) => m.includes("/@effect/cli/")), [])
    }).pipe(Effect.scoped), 60_000)

  it.live(
    "--help loads the command line but neither the emulator nor a credential, and prints no ANSI when piped",
    () =>
      Effect.gen(function*() {
        const help = yield* loadedModules(["token", "--help"])
        assert.strictEqual(help.code, 0, help.stderr)
        assert.include(help.stdout, "--credential")
        assert.notMatch(help.stdout, /\u001b\[/)
        assert.isTrue(help.modules.some((m) => m.endsWith("/internal/cli/main.ts")), help.modules.join("\n"))
        assert.deepStrictEqual(help.modules.filter(heavy), [])
        const noColor = yield* runBin(["--help"], { NO_COLOR: "1" })
        assert.strictEqual(noColor.code, 0, noColor.stderr)
        assert.include(noColor.stdout, "USAGE")
        assert.notMatch(noColor.stdout, /\u001b\[/)
        const bad = yield* runBin(["token", "-c", "nope"], {})
        assert.strictEqual(bad.code, 2)
        assert.include(bad.stderr, "--credential: \"nope\" is not one of default, environment")
        assert.notMatch(bad.stderr, /\u001b\[/)
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("emulator --exports-file", () => {
  it.live(
    "the file appears only complete, once the emulator is ready; `.` of it works for token; --pid-file stops it",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-env-file-")
        const envFile = path.join(dir, "emulator.env")
        const pidFile = path.join(dir, "emulator.pid")
        fs.writeFileSync(envFile, "stale\n") // left by an earlier run: removed at start, never taken for this one's
        const seen: Array<string> = []
        const ready = yield* Deferred.make<string>()
        const watcher = yield* Effect.acquireRelease(
          Effect.sync(() =>
            fs.watch(dir, () => {
              if (!fs.existsSync(envFile)) return
              const content = fs.readFileSync(envFile, "utf8")
              seen.push(content)
              if (content !== "stale\n") Deferred.unsafeDone(ready, Effect.succeed(content))
            })
          ),
          (w) => Effect.sync(() => w.close())
        )
        void watcher
        const child = spawn(
          process.execPath,
          [...guardedNodeArgs, "src/bin.ts", "emulator", "--exports-file", envFile, "--pid-file", pidFile],
          { cwd: root, env: childEnv({}), stdio: "ignore" }
        )
        const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
        yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
        const content = yield* Deferred.await(ready)
        for (const observed of seen.filter((c) => c !== "stale\n")) {
          assert.match(observed, /^# identity emulator on http:\/\/127\.0\.0\.1:\d+/)
          assert.match(observed, /\nexport AZURE_PASSWORD='emulator-password-[^']+'\n$/)
        }
        assert.include(content, "export AZURE_USERNAME='user@emulator.test'")
        assert.strictEqual(fs.readFileSync(pidFile, "utf8"), `${child.pid}\n`)
        assert.strictEqual(fs.statSync(envFile).mode & 0o077, 0)

        const quoted = [process.execPath, ...guardedNodeArgs, "src/bin.ts"].map((a) => `'${a}'`).join(" ")
        const token = yield* runChild("/bin/sh", [
          "-c",
          `. '${envFile}' && exec ${quoted} token --credential username-password --json`
        ], {})
        assert.strictEqual(token.code, 0, token.stderr)
        const json = JSON.parse(token.stdout) // the credential's deprecation warning went to stderr
        assert.include(token.stderr, "UsernamePasswordCredential uses the resource owner password grant")
        assert.strictEqual(json.credential, "UsernamePasswordCredential")
        assert.strictEqual(json.claims.upn ?? json.claims.preferred_username, "user@emulator.test")

        process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGTERM")
        yield* Effect.promise(() => exited)
        assert.isFalse(fs.existsSync(envFile))
        assert.isFalse(fs.existsSync(pidFile))
      }).pipe(Effect.scoped),
    180_000
  )
})

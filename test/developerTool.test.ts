/**
 * `makeCredential`, the getToken the developer-tool credentials share, with a tool of the test's own: the fallback to
 * the next executable when one is not found (what `powershell.exe` after `pwsh.exe` relies on, on Windows), and the
 * claims rules of a tool that takes them and of one that does not.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AccessToken from "../src/AccessToken.js"
import * as Tool from "../src/internal/developerTool.js"
import * as TokenCredential from "../src/TokenCredential.js"
import { mockToolHarness, unavailableErrorOf } from "./support/developerTool.js"
import { T0 } from "./support/helpers.js"
import { notFound, output, permissionDenied } from "./support/mockCommand.js"

const SCOPE = "https://management.azure.com/.default"
const TOKEN = "fake-tool-token"

const fakeTool = (overrides: Partial<Tool.Tool> = {}): Tool.Tool => ({
  name: "FakeToolCredential",
  label: "Fake Tool",
  subject: "the Fake Tool",
  installHint: "install the Fake Tool",
  // the same list on every platform: the test does not depend on the machine
  executables: { windows: ["fake", "fake-legacy"], posix: ["fake", "fake-legacy"] },
  oneScopeAtATime: false,
  invocation: ({ claims, scopes }) => ({
    args: ["token", ...scopes, ...(claims === undefined ? [] : ["--claims", claims])],
    env: { FAKE_TOOL: "1" },
    tryCommand: "fake token",
    interpret: (out, nowMillis) =>
      Effect.succeed(
        out.exitCode === 0
          ? Either.right(
            AccessToken.make({ token: out.stdout, obtainedAtMillis: nowMillis, expiresOnMillis: T0 + 3600_000 })
          )
          : Either.left(`fake exited with ${out.exitCode}`)
      )
  }),
  ...overrides
})

const withFake = (tool: Tool.Tool) =>
  mockToolHarness((options: Tool.ToolOptions = {}) =>
    Layer.scoped(TokenCredential.TokenCredential, Tool.makeCredential(tool, options))
  )

const unavailableError = unavailableErrorOf(TOKEN)

describe("makeCredential: executables", () => {
  it.effect("when the first executable is not found, the next runs with the same arguments and environment", () =>
    withFake(fakeTool())(
      (command) => command.executable === "fake" ? notFound : output(TOKEN),
      (credential, commands) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(Redacted.value(token.token), TOKEN)
          assert.deepStrictEqual(commands.map((c) => c.executable), ["fake", "fake-legacy"])
          for (const c of commands) {
            assert.deepStrictEqual(c.args, ["token", SCOPE])
            assert.deepStrictEqual(c.env, { EXTRA: "x", FAKE_TOOL: "1" })
            assert.strictEqual(c.cwd, "/bin")
          }
        }),
      { environment: { EXTRA: "x", FAKE_TOOL: "0" } }
    ))

  it.effect("none found: unavailable, naming each executable tried, code tool-missing", () =>
    withFake(fakeTool())(() => notFound, (credential, commands) =>
      Effect.gen(function*() {
        const error = unavailableError(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.strictEqual(
          error.reason,
          "the Fake Tool (fake, then fake-legacy) was not found on PATH: install the Fake Tool"
        )
        assert.strictEqual(error.code, "tool-missing")
        assert.strictEqual(commands.length, 2)
      })))

  it.effect("another failure to start is final: the next executable is not tried", () =>
    withFake(fakeTool())(() => permissionDenied, (credential, commands) =>
      Effect.gen(function*() {
        const error = unavailableError(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.include(error.reason, "the Fake Tool could not be started: PermissionDenied")
        assert.strictEqual(error.code, "tool-failed")
        assert.strictEqual(commands.length, 1)
      })))

  it.effect("the executable option replaces the list: no fallback", () =>
    withFake(fakeTool())(() => notFound, (credential, commands) =>
      Effect.gen(function*() {
        const error = unavailableError(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.include(error.reason, "(/opt/fake) was not found on PATH")
        assert.deepStrictEqual(commands.map((c) => c.executable), ["/opt/fake"])
      }), { executable: "/opt/fake" }))

  it.effect("what the tool's interpret refuses is unavailable with its reason", () =>
    withFake(fakeTool())(() => output("", { exitCode: 3 }), (credential) =>
      Effect.gen(function*() {
        assert.strictEqual(
          unavailableError(yield* Effect.exit(credential.getToken(SCOPE))).reason,
          "fake exited with 3"
        )
      })))
})

describe("makeCredential: claims", () => {
  it.effect("a tool that takes claims gets them trimmed, past the cache; blank claims are none", () =>
    withFake(fakeTool())(() => output(TOKEN), (credential, commands) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        yield* credential.getToken(SCOPE, { claims: "  " })
        assert.strictEqual(commands.length, 1)
        yield* credential.getToken(SCOPE, { claims: " {\"a\":1} " })
        yield* credential.getToken(SCOPE, { claims: "{\"a\":1}" })
        assert.strictEqual(commands.length, 3)
        assert.deepStrictEqual(commands[2]!.args, ["token", SCOPE, "--claims", "{\"a\":1}"])
      })))

  it.effect("a tool that cannot take claims names the command that answers them, and runs nothing", () =>
    withFake(fakeTool({
      oneScopeAtATime: true,
      claimsChallengeCommand: (claims, { scope, tenantId }) => `fake login ${claims} ${scope} ${tenantId ?? "-"}`
    }))(() => output(TOKEN), (credential, commands) =>
      Effect.gen(function*() {
        const error = unavailableError(yield* Effect.exit(credential.getToken(SCOPE, { claims: " c " })))
        assert.strictEqual(
          error.reason,
          `the Fake Tool cannot answer a claims challenge by itself. Sign in again with: fake login c ${SCOPE} t1`
        )
        assert.include(
          unavailableError(yield* Effect.exit(credential.getToken([SCOPE, SCOPE]))).reason,
          "the Fake Tool gets a token for one scope at a time, but 2 were given"
        )
        assert.strictEqual(commands.length, 0)
      }), { tenantId: "t1" }))
})

import { assert, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { AzureDeveloperCliCredential } from "../src/index.js"
import { mockToolHarness, unavailableReasonOf } from "./support/developerTool.js"
import type { Reply } from "./support/mockCommand.js"
import { failure, hang, notFound, output, permissionDenied } from "./support/mockCommand.js"

const SCOPE = "https://management.azure.com/.default"
const TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJhenAiOiJhemQifQ.YXpkLXNpZ25hdHVyZQ"

const azdOutput = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ token: TOKEN, expiresOn: "2026-11-27T09:00:00Z", ...extra })

const withAzd = mockToolHarness(AzureDeveloperCliCredential.layer)

const unavailableReason = unavailableReasonOf(TOKEN, "YXpkLXNpZ25hdHVyZQ")

describe("AzureDeveloperCliCredential with a mock CommandExecutor", () => {
  it.effect("runs azd auth token with argv only, in /bin; parses the RFC 3339 expiry", () =>
    withAzd(
      () => output(azdOutput({ expiresOn: "2026-11-27T10:30:00+01:00" })),
      (credential, commands) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken([SCOPE, "https://graph.microsoft.com/.default"])
          assert.strictEqual(Redacted.value(token.token), TOKEN)
          assert.strictEqual(DateTime.formatIso(token.expiresOn), "2026-11-27T09:30:00.000Z")
          const c = commands[0]!
          assert.strictEqual(c.executable, "azd")
          assert.deepStrictEqual(c.args, [
            "auth",
            "token",
            "--output",
            "json",
            "--no-prompt",
            "--scope",
            SCOPE,
            "--scope",
            "https://graph.microsoft.com/.default"
          ])
          assert.strictEqual(c.cwd, "/bin")
          assert.strictEqual(c.shell, false)
          assert.deepStrictEqual(c.env, { AZURE_CORE_NO_COLOR: "true" })
          assert.strictEqual(c.stdin, "")
          // cached
          yield* credential.getToken([SCOPE, "https://graph.microsoft.com/.default"])
          assert.strictEqual(commands.length, 1)
        })
    ))

  it.effect("tenant: configured, requested and allowed, refused; claims bypass the cache and are base64", () =>
    withAzd(
      () => output(azdOutput()),
      (credential, commands) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.deepStrictEqual(commands[0]!.args.slice(7), ["--tenant-id", "contoso.onmicrosoft.com"])
          yield* credential.getToken(SCOPE, { tenantId: "fabrikam.onmicrosoft.com" })
          assert.deepStrictEqual(commands[1]!.args.slice(7), ["--tenant-id", "fabrikam.onmicrosoft.com"])
          assert.include(
            unavailableReason(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: "elsewhere" }))),
            "additionallyAllowedTenants"
          )
          const claims = "{\"access_token\":{\"xms_cc\":{\"values\":[\"CP1\"]}}}"
          yield* credential.getToken(SCOPE, { claims })
          assert.deepStrictEqual(commands[2]!.args.slice(9), ["--claims", Buffer.from(claims).toString("base64")])
          assert.strictEqual(commands.length, 3)
        }),
      { tenantId: "contoso.onmicrosoft.com" },
      { AZURE_ADDITIONALLY_ALLOWED_TENANTS: "fabrikam.onmicrosoft.com" }
    ))

  it.effect("validates scopes and tenant before building a command", () =>
    Effect.gen(function*() {
      yield* withAzd(() => output(azdOutput()), (credential, commands) =>
        Effect.gen(function*() {
          assert.match(unavailableReason(yield* Effect.exit(credential.getToken("a b"))), /invalid scope/)
          assert.match(
            unavailableReason(yield* Effect.exit(credential.getToken([SCOPE, "--tenant-id=evil;"]))),
            /invalid scope/
          )
          assert.strictEqual(commands.length, 0)
        }))
      yield* withAzd(() => output(azdOutput()), (credential, commands) =>
        Effect.gen(function*() {
          assert.include(unavailableReason(yield* Effect.exit(credential.getToken(SCOPE))), "invalid tenant id")
          assert.strictEqual(commands.length, 0)
        }), { tenantId: "a&b" })
    }))

  it.effect("not installed, not signed in, other errors", () =>
    Effect.gen(function*() {
      const cases: Array<[Reply, string]> = [
        [notFound, "https://aka.ms/azd-install"],
        [failure(127, "sh: azd: not found"), "was not found on PATH"],
        [failure(1, "'azd' is not recognized as an internal or external command"), "was not found on PATH"],
        [
          failure(1, "ERROR: fetching token: not logged in, run `azd auth login` to login"),
          "run `azd auth login` and try again"
        ],
        [
          failure(
            1,
            "",
            "{\"type\":\"consoleMessage\",\"data\":{\"message\":\"ERROR: not logged in, run `azd auth login` to login\"}}"
          ),
          "run `azd auth login`"
        ],
        [failure(3, `ERROR: something else ${TOKEN}`), "exited with code 3: ERROR: something else <redacted>"],
        [failure(3, ""), "exited with code 3. Run"],
        [permissionDenied, "could not be started"]
      ]
      for (const [reply, expected] of cases) {
        yield* withAzd(() => reply, (credential) =>
          Effect.gen(function*() {
            assert.include(unavailableReason(yield* Effect.exit(credential.getToken(SCOPE))), expected)
          }))
      }
    }))

  it.effect("bad output never puts the token in the error", () =>
    Effect.gen(function*() {
      const cases: Array<[string, string]> = [
        [`garbage ${TOKEN}`, "not JSON"],
        [JSON.stringify({ accessToken: TOKEN }), "not a token answer"],
        [azdOutput({ expiresOn: 1700000000 }), "not a token answer"],
        [azdOutput({ expiresOn: "2026-11-27 09:00:00" }), "not an RFC 3339 timestamp"]
      ]
      for (const [stdout, expected] of cases) {
        yield* withAzd(() => output(stdout), (credential) =>
          Effect.gen(function*() {
            assert.include(unavailableReason(yield* Effect.exit(credential.getToken(SCOPE))), expected)
          }))
      }
    }))

  it.effect("stops a hanging azd after the timeout", () =>
    withAzd(() => hang, (credential, commands) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* TestClock.adjust("499 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        assert.include(unavailableReason(yield* Fiber.join(fiber)), "did not answer within 500ms")
        assert.isTrue(commands[0]!.killed)
      }), { processTimeout: "500 millis" }))

  it.effect("default timeout is 10 seconds; custom executable and environment", () =>
    withAzd(() => hang, (credential, commands) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* TestClock.adjust("10 seconds")
        assert.include(unavailableReason(yield* Fiber.join(fiber)), "within 10s")
        assert.strictEqual(commands[0]!.executable, "/usr/local/bin/azd")
        assert.deepStrictEqual(commands[0]!.env, { AZD_CONFIG_DIR: "/tmp/azd", AZURE_CORE_NO_COLOR: "true" })
      }), { executable: "/usr/local/bin/azd", environment: { AZD_CONFIG_DIR: "/tmp/azd" } }))
})

import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { assert, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { AzureCliCredential, TokenCredential } from "../src/index.js"
import type { IdentityError } from "../src/index.js"
import * as Tool from "../src/internal/developerTool.js"
import { mockToolHarness, unavailableErrorOf } from "./support/developerTool.js"
import { setNow, settle, T0 } from "./support/helpers.js"
import type { Reply } from "./support/mockCommand.js"
import { failure, hang, notFound, output, permissionDenied, spawnThrows } from "./support/mockCommand.js"

const SCOPE = "https://management.azure.com/.default"
const TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQifQ.c2lnbmF0dXJl"
const EXPIRES = Math.floor(T0 / 1000) + 3600

const cliOutput = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    accessToken: TOKEN,
    expiresOn: "2026-11-27 09:00:00.000000",
    expires_on: EXPIRES,
    subscription: "sub-1",
    tenant: "tenant-1",
    tokenType: "Bearer",
    ...extra
  })

const withCli = mockToolHarness(AzureCliCredential.layer)

const unavailableErrorOfCli = unavailableErrorOf(TOKEN, "c2lnbmF0dXJl")

const unavailableReason = (exit: Exit.Exit<unknown, IdentityError.IdentityError>): string => {
  const error = unavailableErrorOfCli(exit)
  assert.include(error.message, "AzureCliCredential is unavailable: ")
  return error.reason
}

describe("AzureCliCredential with a mock CommandExecutor", () => {
  it.effect("runs az with argv only, in /bin, with AZURE_CORE_NO_COLOR and stdin closed; prefers expires_on", () =>
    withCli(
      () => output(cliOutput({ expiresOn: "1999-01-01 00:00:00.000000" })),
      (credential, commands) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(Redacted.value(token.token), TOKEN)
          assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), EXPIRES * 1000)
          assert.strictEqual(token.tokenType, "Bearer")
          assert.strictEqual(commands.length, 1)
          const c = commands[0]!
          assert.strictEqual(c.executable, "az")
          assert.deepStrictEqual(c.args, [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            "https://management.azure.com"
          ])
          assert.strictEqual(c.cwd, "/bin")
          assert.strictEqual(c.shell, false)
          assert.isTrue(c.extendEnv)
          assert.deepStrictEqual(c.env, { AZURE_CORE_NO_COLOR: "true" })
          assert.strictEqual(c.stdin, "")
        })
    ))

  it.effect("caches the token per tenant and scope", () =>
    withCli(() => output(cliOutput()), (credential, commands) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        yield* TestClock.adjust("10 minutes")
        yield* credential.getToken([SCOPE])
        assert.strictEqual(commands.length, 1)
        yield* credential.getToken("https://vault.azure.net/.default")
        assert.strictEqual(commands.length, 2)
        assert.strictEqual(commands[1]!.args[5], "https://vault.azure.net")
      })))

  it.effect("passes tenant and subscription; a requested tenant must be allowed", () =>
    withCli(() => output(cliOutput()), (credential, commands) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        assert.deepStrictEqual(commands[0]!.args.slice(6), [
          "--tenant",
          "contoso.onmicrosoft.com",
          "--subscription",
          "My Subscription_1.0"
        ])
        yield* credential.getToken(SCOPE, { tenantId: "fabrikam.onmicrosoft.com" })
        assert.deepStrictEqual(commands[1]!.args.slice(6, 8), ["--tenant", "fabrikam.onmicrosoft.com"])
        const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: "other-tenant" })))
        assert.include(reason, "AZURE_ADDITIONALLY_ALLOWED_TENANTS")
        assert.strictEqual(commands.length, 2)
      }), {
      tenantId: "contoso.onmicrosoft.com",
      subscription: "My Subscription_1.0",
      additionallyAllowedTenants: ["fabrikam.onmicrosoft.com"]
    }))

  it.effect("without a configured tenant, any valid requested tenant is passed; allowed tenants from config", () =>
    withCli(
      () => output(cliOutput()),
      (credential, commands) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE, { tenantId: "tenant-x" })
          assert.deepStrictEqual(commands[0]!.args.slice(6), ["--tenant", "tenant-x"])
          const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: "bad tenant;x" })))
          assert.include(reason, "invalid tenant id")
          assert.strictEqual(commands.length, 1)
        }),
      {},
      { AZURE_ADDITIONALLY_ALLOWED_TENANTS: "a;b" }
    ))

  it.effect("validates scopes, tenant and subscription before building a command", () =>
    Effect.gen(function*() {
      const none = () => output(cliOutput())
      yield* withCli(none, (credential, commands) =>
        Effect.gen(function*() {
          for (
            const bad of [
              "https://x/.default; rm -rf /",
              "https://x/.default --tenant evil",
              "$(whoami)",
              "a&b",
              "'quoted'"
            ]
          ) {
            const reason = unavailableReason(yield* Effect.exit(credential.getToken(bad)))
            assert.match(reason, /invalid scope/)
          }
          assert.include(unavailableReason(yield* Effect.exit(credential.getToken([]))), "no scope")
          assert.include(
            unavailableReason(yield* Effect.exit(credential.getToken([SCOPE, "https://vault.azure.net/.default"]))),
            "one scope at a time, but 2 were given"
          )
          assert.strictEqual(commands.length, 0)
        }))
      yield* withCli(none, (credential, commands) =>
        Effect.gen(function*() {
          assert.include(unavailableReason(yield* Effect.exit(credential.getToken(SCOPE))), "invalid tenant id")
          assert.strictEqual(commands.length, 0)
        }), { tenantId: "t; rm -rf /" })
      yield* withCli(none, (credential, commands) =>
        Effect.gen(function*() {
          assert.include(unavailableReason(yield* Effect.exit(credential.getToken(SCOPE))), "invalid subscription")
          assert.strictEqual(commands.length, 0)
        }), { subscription: "sub\"; echo" })
    }))

  it.effect("a tenant or scope starting with '-' never reaches az argv (a 401 challenge naming tenant --debug)", () =>
    withCli(() => output(cliOutput()), (credential, commands) =>
      Effect.gen(function*() {
        for (const tenantId of ["--debug", "-x", ".hidden"]) {
          const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE, { tenantId })))
          assert.include(reason, "invalid tenant id")
        }
        for (const scope of ["--debug", "-https://x/.default"]) {
          const reason = unavailableReason(yield* Effect.exit(credential.getToken(scope)))
          assert.include(reason, "invalid scope")
        }
        const configured = yield* withCli(
          () => output(cliOutput()),
          (c, cmds) => Effect.map(Effect.exit(c.getToken(SCOPE)), (exit) => ({ exit, count: cmds.length })),
          { tenantId: "--debug" }
        )
        assert.include(unavailableReason(configured.exit), "invalid tenant id")
        assert.strictEqual(configured.count, 0)
        const subscription = yield* withCli(
          () => output(cliOutput()),
          (c, cmds) => Effect.map(Effect.exit(c.getToken(SCOPE)), (exit) => ({ exit, count: cmds.length })),
          { subscription: "--debug" }
        )
        assert.include(unavailableReason(subscription.exit), "invalid subscription")
        assert.strictEqual(subscription.count, 0)
        assert.strictEqual(commands.length, 0)
        // a valid tenant still goes through, as one argv element after --tenant
        yield* credential.getToken(SCOPE, { tenantId: "contoso.onmicrosoft.com" })
        assert.strictEqual(commands.length, 1)
        const args = commands[0]!.args
        assert.strictEqual(args[args.indexOf("--tenant") + 1], "contoso.onmicrosoft.com")
        for (const arg of args.slice(2)) {
          if (arg.startsWith("-")) assert.include(["--resource", "--scope", "--tenant", "--output"], arg)
        }
      })))

  it("sanitize redacts Bearer values and client_secret= from az output", () => {
    assert.strictEqual(
      Tool.sanitize("ERROR: Authorization: Bearer 0paque-T0ken_value client_secret=s3cr3t&x=1"),
      "ERROR: Authorization: Bearer <redacted> client_secret=<redacted>&x=1"
    )
  })

  it.effect("reads expiresOn as local time in the current time zone when expires_on is absent", () =>
    withCli(
      () => output(cliOutput({ expires_on: undefined, expiresOn: "2026-11-27 15:00:00.123456" })),
      (credential) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE).pipe(DateTime.withCurrentZoneNamed("Asia/Kolkata"))
          // 15:00 in India (UTC+05:30) is 09:30 UTC
          assert.strictEqual(DateTime.formatIso(token.expiresOn), "2026-11-27T09:30:00.123Z")
        })
    ))

  it.effect("expiresOn in New York in summer and in winter", () =>
    withCli((_, i) =>
      output(cliOutput({
        expires_on: undefined,
        expiresOn: i === 0 ? "2027-07-01 10:00:00.000000" : "2027-12-01 10:00:00.000000"
      })), (credential) =>
      Effect.gen(function*() {
        const summer = yield* credential.getToken(SCOPE).pipe(DateTime.withCurrentZoneNamed("America/New_York"))
        const winter = yield* credential.getToken("https://vault.azure.net/.default").pipe(
          DateTime.withCurrentZoneNamed("America/New_York")
        )
        assert.strictEqual(DateTime.formatIso(summer.expiresOn), "2027-07-01T14:00:00.000Z")
        assert.strictEqual(DateTime.formatIso(winter.expiresOn), "2027-12-01T15:00:00.000Z")
      })))

  it.effect("expires_on as a numeric string is accepted", () =>
    withCli(() => output(cliOutput({ expires_on: String(EXPIRES) })), (credential) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), EXPIRES * 1000)
      })))

  it.effect("not installed: spawn ENOENT, exit code 127, or the shell's message", () =>
    Effect.gen(function*() {
      const replies: Array<Reply> = [
        notFound,
        failure(127, "/bin/sh: 1: az: not found"),
        failure(1, "'az' is not recognized as an internal or external command")
      ]
      for (const reply of replies) {
        yield* withCli(() => reply, (credential) =>
          Effect.gen(function*() {
            const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.include(reason, "was not found on PATH")
            assert.include(reason, "https://aka.ms/azure-cli")
            assert.include(reason, "az login")
          }))
      }
    }))

  it.effect("not signed in: tells the user to run az login", () =>
    withCli(
      () => failure(1, "ERROR: Please run 'az login' to setup account.\n"),
      (credential) =>
        Effect.gen(function*() {
          const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.include(reason, "run `az login`")
          assert.include(reason, "az said: ERROR: Please run 'az login' to setup account.")
        })
    ))

  it.effect("another CLI error is unavailable with the sanitised stderr (no token even if az printed one)", () =>
    withCli(
      () =>
        failure(
          2,
          `\u001b[31mERROR: AADSTS50076: Due to a configuration change... accessToken: "${TOKEN}"\u001b[0m bearer ${TOKEN}`
        ),
      (credential) =>
        Effect.gen(function*() {
          const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.include(reason, "exited with code 2: ERROR: AADSTS50076")
          assert.include(reason, "<redacted>")
          assert.notInclude(reason, "\u001b")
          assert.include(reason, "az account get-access-token --resource https://management.azure.com")
        })
    ))

  it.effect("stops a hanging az after the default 10 s and says so", () =>
    withCli(() => hang, (credential, commands) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* TestClock.adjust("9999 millis")
        assert.isNull(yield* Fiber.poll(fiber).pipe(Effect.map(Option.getOrNull)))
        yield* TestClock.adjust("1 millis")
        const reason = unavailableReason(yield* Fiber.join(fiber))
        assert.include(reason, "did not answer within 10s")
        assert.include(reason, "processTimeout")
        assert.isTrue(commands[0]!.killed)
      })))

  it.effect("the timeout is configurable", () =>
    withCli(() => hang, (credential) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* TestClock.adjust("1999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        assert.include(unavailableReason(yield* Fiber.join(fiber)), "within 2s")
      }), { processTimeout: "2 seconds" }))

  it.effect("bad output never puts the token in the error", () =>
    Effect.gen(function*() {
      const cases: Array<[string, string]> = [
        [`not json at all ${TOKEN}`, "not JSON"],
        [JSON.stringify({ token: TOKEN }), "not a token answer"],
        [JSON.stringify({ accessToken: "" }), "not a token answer"],
        [cliOutput({ expires_on: undefined, expiresOn: `soon ${TOKEN}` }), "without a readable expiry"],
        [cliOutput({ expires_on: undefined, expiresOn: "2026-02-31 10:00:00.000000" }), "without a readable expiry"],
        [cliOutput({ expires_on: undefined, expiresOn: undefined }), "without a readable expiry"],
        [cliOutput({ expires_on: "later" }), "not a token answer"]
      ]
      for (const [stdout, expected] of cases) {
        yield* withCli(() => output(stdout), (credential) =>
          Effect.gen(function*() {
            const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.include(reason, expected)
          }))
      }
    }))

  it.effect("a claims challenge gives the exact az login command and runs nothing", () =>
    withCli(() => output(cliOutput()), (credential, commands) =>
      Effect.gen(function*() {
        const claims = "{\"access_token\":{\"nbf\":{\"essential\":true,\"value\":\"1700000000\"}}}"
        const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE, { claims })))
        const b64 = Buffer.from(claims, "utf8").toString("base64")
        assert.include(reason, `az login --claims-challenge ${b64} --scope ${SCOPE} --tenant contoso.onmicrosoft.com`)
        assert.strictEqual(commands.length, 0)
        assert.strictEqual(
          AzureCliCredential.claimsChallengeCommand(claims, SCOPE, undefined),
          `az login --claims-challenge ${b64} --scope ${SCOPE}`
        )
      }), { tenantId: "contoso.onmicrosoft.com" }))

  it.effect("a process that cannot be started is unavailable", () =>
    withCli(() => permissionDenied, (credential) =>
      Effect.gen(function*() {
        assert.include(
          unavailableReason(yield* Effect.exit(credential.getToken(SCOPE))),
          "could not be started: PermissionDenied"
        )
      })))

  it.effect("a spawn that throws (Node's EINVAL for .cmd files) is unavailable, not a defect", () =>
    withCli(() => spawnThrows, (credential) =>
      Effect.gen(function*() {
        assert.include(
          unavailableReason(yield* Effect.exit(credential.getToken(SCOPE))),
          "could not be started: Error: spawn EINVAL"
        )
      })))

  it.effect("extra environment and a custom executable", () =>
    withCli(() => output(cliOutput()), (credential, commands) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        assert.strictEqual(commands[0]!.executable, "/opt/az/bin/az")
        assert.deepStrictEqual(commands[0]!.env, { AZURE_CONFIG_DIR: "/tmp/az", AZURE_CORE_NO_COLOR: "true" })
      }), { environment: { AZURE_CONFIG_DIR: "/tmp/az", AZURE_CORE_NO_COLOR: "false" }, executable: "/opt/az/bin/az" }))
})

describe("AzureCliCredential: review fixes", () => {
  it.effect("a process that does not stop when told to still times out, within a bounded grace", () =>
    Effect.gen(function*() {
      yield* setNow
      // a process that ignores SIGTERM: its scope's finalizer (kill, then wait for the exit) never ends
      const executor = CommandExecutor.makeExecutor(() =>
        Effect.gen(function*() {
          yield* Effect.addFinalizer(() => Effect.never)
          return {
            [CommandExecutor.ProcessTypeId]: CommandExecutor.ProcessTypeId,
            pid: CommandExecutor.ProcessId(1),
            exitCode: Effect.never,
            isRunning: Effect.succeed(true),
            kill: () => Effect.never,
            stdin: Sink.drain,
            stdout: Stream.never,
            stderr: Stream.never
          } as unknown as CommandExecutor.Process
        })
      )
      yield* Effect.gen(function*() {
        const credential = yield* TokenCredential.TokenCredential
        const fiber = yield* Effect.fork(credential.getToken(SCOPE))
        yield* TestClock.adjust("1 second")
        // SIGTERM, SIGKILL, closing its scope: each waits at most killGrace
        for (let i = 0; i < 3; i++) yield* Effect.zipRight(settle, TestClock.adjust(Tool.killGrace))
        const exit = yield* Fiber.poll(fiber)
        assert.isTrue(Option.isSome(exit), "getToken waits forever for a process that does not stop")
        assert.include(unavailableReason(Option.getOrThrow(exit)), "did not answer within 1s")
      }).pipe(
        Effect.provide(
          AzureCliCredential.layer({ processTimeout: "1 second" }).pipe(
            Layer.provide(Layer.succeed(CommandExecutor.CommandExecutor, executor))
          )
        )
      )
    }))

  it.effect("an expires_on beyond any representable date is unavailable, not a defect", () =>
    withCli(
      () => output(cliOutput({ expires_on: 1e13, expiresOn: undefined })),
      (credential) =>
        Effect.gen(function*() {
          const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.include(reason, "without a readable expiry")
        })
    ))
})

describe("developer tool helpers", () => {
  it("parses local date-times in a zone and refuses impossible ones", () => {
    const kolkata = DateTime.zoneUnsafeMakeNamed("Asia/Kolkata")
    assert.deepStrictEqual(
      Tool.parseLocalDateTime("2026-11-27 10:00:00.5", kolkata),
      Option.some(Date.UTC(2026, 10, 27, 4, 30, 0, 500))
    )
    assert.deepStrictEqual(
      Tool.parseLocalDateTime("2026-11-27T10:00:00", kolkata),
      Option.some(Date.UTC(2026, 10, 27, 4, 30))
    )
    for (const bad of ["", "2026-13-01 00:00:00", "2026-02-30 00:00:00", "2026-11-27 24:00:00", "27/11/2026 10:00"]) {
      assert.isTrue(Option.isNone(Tool.parseLocalDateTime(bad, kolkata)), bad)
    }
    // an ambiguous time at the end of daylight saving takes the earlier instant (refresh sooner, never later)
    const newYork = DateTime.zoneUnsafeMakeNamed("America/New_York")
    assert.deepStrictEqual(
      Tool.parseLocalDateTime("2026-11-01 01:30:00", newYork),
      Option.some(Date.UTC(2026, 10, 1, 5, 30))
    )
  })

  it.prop(
    "local date-time round trip in zones without daylight saving",
    [
      FastCheck.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }),
      FastCheck.constantFrom("UTC", "Asia/Kolkata", "Asia/Tokyo", "Australia/Brisbane", "America/Phoenix")
    ],
    ([millis, zoneId]) => {
      const zone = DateTime.zoneUnsafeMakeNamed(zoneId)
      const parts = DateTime.toParts(DateTime.unsafeMakeZoned(millis, { timeZone: zone }))
      const pad = (n: number, w = 2) => String(n).padStart(w, "0")
      const text = `${parts.year}-${pad(parts.month)}-${pad(parts.day)} ${pad(parts.hours)}:${pad(parts.minutes)}:${
        pad(parts.seconds)
      }.${pad(parts.millis, 3)}000`
      assert.deepStrictEqual(Tool.parseLocalDateTime(text, zone), Option.some(millis))
    }
  )

  it.prop("parsing any text never throws", [FastCheck.string()], ([text]) => {
    Tool.parseLocalDateTime(text, DateTime.zoneUnsafeMakeNamed("Europe/Paris"))
    Tool.parseRfc3339(text)
    assert.isString(Tool.sanitize(text))
  })

  it("sanitize removes tokens, colours and control characters and bounds the length", () => {
    assert.strictEqual(
      Tool.sanitize(`\u001b[1m{"accessToken": "${TOKEN}", "refresh_token":'r-1', token=abc}\u0007`),
      "{\"accessToken\": <redacted>, \"refresh_token\":<redacted>, token=<redacted>}"
    )
    assert.strictEqual(Tool.sanitize(`x ${TOKEN} y`), "x <redacted> y")
    assert.strictEqual(Tool.sanitize("a".repeat(700)).length, 601)
  })

  it("parses RFC 3339 only with an offset", () => {
    assert.deepStrictEqual(Tool.parseRfc3339("2026-11-27T09:00:00Z"), Option.some(Date.UTC(2026, 10, 27, 9)))
    assert.deepStrictEqual(Tool.parseRfc3339("2026-11-27T10:00:00+01:00"), Option.some(Date.UTC(2026, 10, 27, 9)))
    assert.isTrue(Option.isNone(Tool.parseRfc3339("2026-11-27T09:00:00")))
  })

  it("working directory per platform", () => {
    assert.strictEqual(Tool.workingDirectory({ windows: false, systemRoot: undefined }), "/bin")
    assert.strictEqual(Tool.workingDirectory({ windows: true, systemRoot: "D:\\Win" }), "D:\\Win")
    assert.strictEqual(Tool.workingDirectory({ windows: true, systemRoot: undefined }), "C:\\Windows")
  })
})

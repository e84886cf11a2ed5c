import { assert, describe, it } from "@effect/vitest"
import type * as Console from "effect/Console"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { DeviceCodeCredential, TokenCredential } from "../src/index.js"
import {
  assertNoSecret,
  captureLogs,
  failureOf,
  setNow,
  settle,
  T0,
  tokenValue,
  withCredentialOver,
  withEnv
} from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, mockHttp, text, tokenBody } from "./support/mockHttp.js"

const DEVICE_CODE = "DAQABAAEAAAD--secret-device-code"
const USER_CODE = "ABCD-EFGH"
const RT = "device-refresh-token-value"
const TENANT = "contoso.onmicrosoft.com"
const SCOPE = "https://graph.microsoft.com/User.Read"
const AUTHORITY = "https://login.example.test"

const deviceBody = (extra: object = {}) => ({
  device_code: DEVICE_CODE,
  user_code: USER_CODE,
  verification_uri: "https://microsoft.com/devicelogin",
  expires_in: 900,
  interval: 5,
  message:
    `To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ${USER_CODE} to authenticate.`,
  ...extra
})

const pending = () =>
  json(400, {
    error: "authorization_pending",
    error_description: "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.",
    error_codes: [70016]
  })

const success = (token = "user-at-1", refreshToken: string | undefined = RT) =>
  json(200, tokenBody(token, 3600, refreshToken === undefined ? {} : { refresh_token: refreshToken }))

/** Answers the devicecode endpoint with `device`, and the n-th poll with `polls[n]` (the last one repeats). */
const server = (polls: ReadonlyArray<() => Answer>, device: () => Answer = () => json(200, deviceBody())) => {
  let poll = 0
  return (r: Recorded): Answer => {
    if (r.url.pathname.endsWith("/devicecode")) return device()
    if (r.form.grant_type === "refresh_token") return success(`refreshed-${r.form.scope!.split(" ")[0]}`)
    const answer = polls[Math.min(poll, polls.length - 1)]!
    poll++
    return answer()
  }
}

const withCredential = <A, E>(
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (
    credential: TokenCredential.Service,
    requests: Array<Recorded>,
    prompts: Array<DeviceCodeCredential.DeviceCodeInfo>
  ) => Effect.Effect<A, E>,
  extra: Partial<DeviceCodeCredential.Options> = {}
) => {
  const prompts: Array<DeviceCodeCredential.DeviceCodeInfo> = []
  return withCredentialOver(
    DeviceCodeCredential.layer({
      tenantId: TENANT,
      clientId: "client-1",
      authorityHost: AUTHORITY,
      prompt: (info) => Effect.sync(() => prompts.push(info)),
      ...extra
    }),
    handler,
    (credential, requests) => f(credential, requests, prompts)
  )
}

const polls = (requests: Array<Recorded>) =>
  requests.filter((r) => r.form.grant_type === DeviceCodeCredential.grantType)

/** Moves the clock in steps, letting the polling fiber run between them. */
const advance = (seconds: number) =>
  Effect.gen(function*() {
    yield* TestClock.adjust(`${seconds} seconds`)
    yield* settle
  })

describe("DeviceCodeCredential", () => {
  it.effect("pending → slow_down → success: polls at the server's interval, +5 s after slow_down", () =>
    withCredential(
      server([
        pending,
        () => json(400, { error: "slow_down", error_description: "slow down" }),
        () => success()
      ]),
      (credential, requests, prompts) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(credential.getToken(SCOPE))
          yield* settle
          // the device code request, then the prompt
          assert.strictEqual(requests.length, 1)
          const r = requests[0]!
          assert.strictEqual(r.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/devicecode`)
          assert.deepStrictEqual(r.form, { client_id: "client-1", scope: `${SCOPE} openid profile offline_access` })
          assert.strictEqual(prompts.length, 1)
          assert.strictEqual(prompts[0]!.userCode, USER_CODE)
          assert.strictEqual(prompts[0]!.verificationUri, "https://microsoft.com/devicelogin")
          assert.include(prompts[0]!.message, USER_CODE)
          assert.strictEqual(DateTime.toEpochMillis(prompts[0]!.expiresOn), T0 + 900_000)
          yield* advance(4)
          assert.strictEqual(polls(requests).length, 0)
          yield* advance(1) // T0+5: pending
          assert.strictEqual(polls(requests).length, 1)
          assert.deepStrictEqual(polls(requests)[0]!.form, {
            client_id: "client-1",
            client_info: "1",
            grant_type: DeviceCodeCredential.grantType,
            device_code: DEVICE_CODE,
            scope: `${SCOPE} openid profile offline_access`
          })
          assert.strictEqual(polls(requests)[0]!.url.pathname, `/${TENANT}/oauth2/v2.0/token`)
          yield* advance(5) // T0+10: slow_down
          assert.strictEqual(polls(requests).length, 2)
          yield* advance(9) // T0+19: nothing yet (interval is now 10 s)
          assert.strictEqual(polls(requests).length, 2)
          yield* advance(1) // T0+20: success
          assert.strictEqual(polls(requests).length, 3)
          const token = yield* Fiber.join(fiber)
          assert.strictEqual(tokenValue(token), "user-at-1")
          assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + 20_000 + 3600_000)
          // cached; another scope comes from the refresh token without prompting again
          yield* credential.getToken(SCOPE)
          const other = yield* credential.getToken("https://vault.azure.net/user_impersonation")
          assert.strictEqual(tokenValue(other), "refreshed-https://vault.azure.net/user_impersonation")
          assert.strictEqual(requests.at(-1)!.form.refresh_token, RT)
          assert.strictEqual(prompts.length, 1)
        })
    ))

  it.effect("a server interval below 1 s is raised to 1 s: a 0.001 s interval polls once a second", () =>
    withCredential(
      server([pending], () => json(200, deviceBody({ interval: 0.001, expires_in: 60 }))),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* Effect.fork(credential.getToken(SCOPE))
          yield* settle
          for (let i = 0; i < 10; i++) {
            yield* TestClock.adjust("100 millis")
            yield* settle
          }
          // T0+1 s: one poll, not a thousand
          assert.strictEqual(polls(requests).length, 1)
          yield* advance(9)
          assert.strictEqual(polls(requests).length, 10)
        })
    ))

  it.effect("an interval too small to round to a millisecond polls (once a second), not \"expired\" at once", () =>
    withCredential(
      server([pending, () => success()], () => json(200, deviceBody({ interval: 0.0001, expires_in: 60 }))),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
          yield* settle
          assert.isNull(fiber.unsafePoll())
          yield* advance(1)
          assert.strictEqual(polls(requests).length, 1)
          yield* advance(1)
          assert.strictEqual(polls(requests).length, 2)
          const exit = yield* Fiber.join(fiber)
          assert.isTrue(Exit.isSuccess(exit))
        })
    ))

  it.effect("slow_down after a raised interval: 1 s, then 6 s", () =>
    withCredential(
      server(
        [() => json(400, { error: "slow_down", error_description: "slow down" }), pending],
        () => json(200, deviceBody({ interval: 0.001, expires_in: 60 }))
      ),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* Effect.fork(credential.getToken(SCOPE))
          yield* settle
          yield* advance(1) // T0+1: slow_down
          assert.strictEqual(polls(requests).length, 1)
          yield* advance(5) // T0+6: nothing yet (interval is now 6 s)
          assert.strictEqual(polls(requests).length, 1)
          yield* advance(1) // T0+7
          assert.strictEqual(polls(requests).length, 2)
          yield* advance(6) // T0+13
          assert.strictEqual(polls(requests).length, 3)
        })
    ))

  it.effect("polling stops when the code expires", () =>
    withCredential(
      server([pending], () => json(200, deviceBody({ expires_in: 12 }))),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
          yield* settle
          yield* advance(5)
          yield* advance(5)
          assert.strictEqual(polls(requests).length, 2)
          yield* advance(2) // T0+12: expired, no third poll
          const error = failureOf(yield* Fiber.join(fiber))
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          assert.include(error.message, "expired before the user signed in")
          assert.strictEqual(polls(requests).length, 2)
          yield* advance(60)
          assert.strictEqual(polls(requests).length, 2)
          assertNoSecret(error, DEVICE_CODE)
        })
    ))

  it.effect("interrupting the only caller stops polling; the next call starts a new code", () =>
    withCredential(server([pending]), (credential, requests, prompts) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(credential.getToken(SCOPE))
        yield* settle
        yield* advance(5)
        assert.strictEqual(polls(requests).length, 1)
        yield* Fiber.interrupt(fiber)
        yield* settle
        yield* advance(60)
        assert.strictEqual(polls(requests).length, 1)
        const next = yield* Effect.fork(credential.getToken(SCOPE))
        yield* settle
        assert.strictEqual(prompts.length, 2)
        assert.strictEqual(requests.filter((r) => r.url.pathname.endsWith("/devicecode")).length, 2)
        yield* Fiber.interrupt(next)
      })))

  it.effect("concurrent callers share one device code; one interrupted caller does not stop it for the others", () =>
    withCredential(
      server([pending, pending, () => success("shared")]),
      (credential, requests, prompts) =>
        Effect.gen(function*() {
          const a = yield* Effect.fork(credential.getToken(SCOPE))
          const b = yield* Effect.fork(credential.getToken(SCOPE))
          const c = yield* Effect.fork(credential.getToken("https://vault.azure.net/user_impersonation"))
          yield* settle
          assert.strictEqual(prompts.length, 1)
          yield* Fiber.interrupt(a)
          yield* advance(5)
          yield* advance(5)
          yield* advance(5)
          assert.strictEqual(tokenValue(yield* Fiber.join(b)), "shared")
          assert.strictEqual(tokenValue(yield* Fiber.join(c)), "refreshed-https://vault.azure.net/user_impersonation")
          assert.strictEqual(prompts.length, 1)
          assert.strictEqual(requests.filter((r) => r.url.pathname.endsWith("/devicecode")).length, 1)
        })
    ))

  describe("ends with typed errors that never contain the device code", () => {
    const cases: ReadonlyArray<[string, () => Answer, string]> = [
      ["authorization_declined", () => json(400, { error: "authorization_declined" }), "declined"],
      ["access_denied", () => json(400, { error: "access_denied" }), "declined"],
      ["expired_token", () => json(400, { error: "expired_token" }), "expired"],
      ["bad_verification_code", () => json(400, { error: "bad_verification_code" }), "did not recognise"],
      ["invalid_client", () => json(401, { error: "invalid_client", error_codes: [7000215] }), "invalid_client"],
      ["an HTML page", () => text(200, "<html><title>Proxy</title></html>"), "Proxy"]
    ]
    for (const [title, answer, hint] of cases) {
      it.effect(
        title,
        () =>
          withCredential(server([pending, answer]), (credential, requests) =>
            Effect.gen(function*() {
              const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
              yield* settle
              yield* advance(5)
              yield* advance(5)
              const error = failureOf(yield* Fiber.join(fiber))
              assert.strictEqual(error._tag, "ClientAuthenticationError")
              assert.include(error.message, hint)
              assert.include(error.message, "DeviceCodeCredential")
              assert.strictEqual(polls(requests).length, 2)
              yield* advance(60)
              assert.strictEqual(polls(requests).length, 2)
              assertNoSecret(error, DEVICE_CODE)
            }))
      )
    }
  })

  describe("bad device code answers", () => {
    const cases: ReadonlyArray<[string, () => Answer, string, string]> = [
      ["an HTML page", () => text(200, "<html><title>Login</title></html>"), "ClientAuthenticationError", "Login"],
      [
        "malformed JSON",
        () => text(200, `{"device_code":"${DEVICE_CODE}`, "application/json"),
        "ClientAuthenticationError",
        "not JSON"
      ],
      [
        "no user code",
        () => json(200, { device_code: DEVICE_CODE, expires_in: 900 }),
        "ClientAuthenticationError",
        "user_code"
      ],
      [
        "an OAuth error",
        () =>
          json(400, {
            error: "invalid_request",
            error_description: "AADSTS90002: Tenant not found.",
            error_codes: [90002]
          }),
        "ClientAuthenticationError",
        "tenant was not found"
      ],
      ["a 500 with an empty body", () => text(500, "", "text/plain"), "ClientAuthenticationError", "empty body"],
      [
        "an expires_in beyond any representable date",
        () => json(200, deviceBody({ expires_in: 1e13 })),
        "ClientAuthenticationError",
        "expires_in"
      ]
    ]
    for (const [title, answer, tag, hint] of cases) {
      it.effect(
        title,
        () =>
          withCredential(server([success], answer), (credential, requests, prompts) =>
            Effect.gen(function*() {
              const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
              yield* advance(120)
              const error = failureOf(yield* Fiber.join(fiber))
              assert.strictEqual(error._tag, tag)
              assert.include(error.message, hint)
              assert.strictEqual(prompts.length, 0)
              assert.strictEqual(polls(requests).length, 0)
              assertNoSecret(error, DEVICE_CODE)
            }), {
            retryPolicy: {
              maxRetries: 0,
              baseDelayMillis: 1,
              maxDelayMillis: 1,
              maxElapsedMillis: 1,
              attemptTimeoutMillis: 1000,
              retryStatus: () => false
            }
          })
      )
    }
  })

  it.effect("builds the message when the server sends none, and reads verification_url", () =>
    withCredential(
      server(
        [success],
        () =>
          json(200, {
            device_code: DEVICE_CODE,
            user_code: USER_CODE,
            verification_url: "https://aka.ms/devicelogin",
            expires_in: "900"
          })
      ),
      (credential, _requests, prompts) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(credential.getToken(SCOPE))
          yield* advance(5) // no interval: 5 s
          yield* Fiber.join(fiber)
          assert.strictEqual(prompts[0]!.verificationUri, "https://aka.ms/devicelogin")
          assert.strictEqual(
            prompts[0]!.message,
            `To sign in, use a web browser to open the page https://aka.ms/devicelogin and enter the code ${USER_CODE} to authenticate.`
          )
        })
    ))

  it.effect("the default prompt prints the message with Console.log", () => {
    const printed: Array<string> = []
    const console = new Proxy({}, {
      get: (_, key) =>
        key === "log"
          ? (...args: Array<unknown>) => Effect.sync(() => printed.push(args.map(String).join(" ")))
          : key === Symbol.for("effect/Console")
          ? Symbol.for("effect/Console")
          : () => Effect.void
    }) as unknown as Console.Console
    return withCredential(server([success]), (credential) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(credential.getToken(SCOPE))
        yield* advance(5)
        yield* Fiber.join(fiber)
        assert.deepStrictEqual(printed, [deviceBody().message])
      }), { prompt: undefined }).pipe(Effect.withConsole(console))
  })

  it.effect("a revoked refresh token prompts again (a new device code)", () => {
    let revoked = false
    const base = server([success])
    return withCredential(
      (r) =>
        r.form.grant_type === "refresh_token" && revoked
          ? json(400, { error: "invalid_grant", error_codes: [50173] })
          : base(r),
      (credential, requests, prompts) =>
        Effect.gen(function*() {
          const first = yield* Effect.fork(credential.getToken(SCOPE))
          yield* advance(5)
          yield* Fiber.join(first)
          revoked = true
          const second = yield* Effect.fork(credential.getToken("https://vault.azure.net/user_impersonation"))
          yield* settle
          assert.strictEqual(prompts.length, 2)
          yield* advance(5)
          assert.strictEqual(tokenValue(yield* Fiber.join(second)), "user-at-1")
          assert.strictEqual(requests.filter((r) => r.form.grant_type === "refresh_token").length, 1)
        })
    )
  })

  it.effect("logs nothing secret while polling", () => {
    const logs = captureLogs()
    return withCredential(server([pending, () => success("at-secret")]), (credential) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(credential.getToken(SCOPE))
        yield* advance(5)
        yield* advance(5)
        const token = yield* Fiber.join(fiber)
        yield* Effect.logInfo("got", token)
        for (const line of logs.lines) {
          for (const secret of [DEVICE_CODE, RT, "at-secret"]) assert.notInclude(line, secret)
        }
      })).pipe(Effect.provide(logs.layer))
  })

  it.effect("defaults to the organizations tenant and the developer sign-on client", () =>
    Effect.gen(function*() {
      const http = mockHttp(server([success]))
      yield* setNow
      const fiber = yield* Effect.fork(
        TokenCredential.getToken(SCOPE).pipe(
          Effect.provide(
            DeviceCodeCredential.layer({ authorityHost: AUTHORITY, prompt: () => Effect.void }).pipe(
              Layer.provide(http.layer)
            )
          )
        )
      )
      yield* advance(5)
      yield* Fiber.join(fiber)
      assert.strictEqual(http.requests[0]!.url.pathname, "/organizations/oauth2/v2.0/devicecode")
      assert.strictEqual(http.requests[0]!.form.client_id, DeviceCodeCredential.developerSignOnClientId)
    }).pipe(withEnv({})))
})

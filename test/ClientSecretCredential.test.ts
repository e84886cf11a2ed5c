import { assert, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { ClientSecretCredential, TokenCache, TokenCredential } from "../src/index.js"
import { memoLimit } from "../src/internal/confidentialClient.js"
import type { RetryPolicy } from "../src/internal/http.js"
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
import { json, mockHttp, reset, text, tokenBody } from "./support/mockHttp.js"

const SECRET = "s3cr3t-Value~with/odd+chars"
const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const SCOPE = "https://vault.azure.net/.default"
const AUTHORITY = "https://login.example.test"

const options = (extra: Partial<ClientSecretCredential.Options> = {}): ClientSecretCredential.Options => ({
  tenantId: TENANT,
  clientId: CLIENT,
  clientSecret: Redacted.make(SECRET),
  authorityHost: AUTHORITY,
  ...extra
})

/** Runs `f` with the credential built over a mock HTTP client answering with `handler`. */
const withCredential = <A, E>(
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  extra: Partial<ClientSecretCredential.Options> = {},
  env: Record<string, string> = {}
) => withCredentialOver(ClientSecretCredential.layer(options(extra)), handler, f, { env })

const noRetry: RetryPolicy = {
  maxRetries: 0,
  baseDelayMillis: 0,
  maxDelayMillis: 0,
  maxElapsedMillis: 60_000,
  attemptTimeoutMillis: 20_000,
  retryStatus: () => false
}

describe("ClientSecretCredential", () => {
  it.effect("posts the client credentials grant to the tenant's v2 token endpoint", () =>
    withCredential(() => json(200, tokenBody("tok-1")), (credential, requests) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(tokenValue(token), "tok-1")
        assert.strictEqual(token.tokenType, "Bearer")
        assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + 3600_000)
        assert.strictEqual(requests.length, 1)
        const r = requests[0]!
        assert.strictEqual(r.method, "POST")
        assert.strictEqual(r.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
        assert.strictEqual(r.headers["content-type"], "application/x-www-form-urlencoded")
        assert.deepStrictEqual(r.form, {
          client_id: CLIENT,
          grant_type: "client_credentials",
          client_secret: SECRET,
          scope: SCOPE
        })
        assert.isUndefined(r.headers["traceparent"])
      })))

  it.effect("serves the second call from the cache", () =>
    withCredential(() => json(200, tokenBody("tok-1")), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        yield* TestClock.adjust("10 minutes")
        const again = yield* credential.getToken([SCOPE])
        assert.strictEqual(tokenValue(again), "tok-1")
        assert.strictEqual(requests.length, 1)
        // another scope set is another key
        yield* credential.getToken(["https://graph.microsoft.com/.default"])
        assert.strictEqual(requests.length, 2)
      })))

  it.effect("keys the cache by sorted scopes", () =>
    withCredential(() => json(200, tokenBody("tok")), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(["b/.default", "a/.default"])
        yield* credential.getToken(["a/.default", "b/.default"])
        assert.strictEqual(requests.length, 1)
        assert.strictEqual(requests[0]!.form.scope, "b/.default a/.default")
      })))

  it.effect("a scope with '|' in it is never taken for the key of another tenant's token", () =>
    withCredential((_, i) => json(200, tokenBody(`tok-${i + 1}`)), (credential, requests) =>
      Effect.gen(function*() {
        const other = "99999999-2222-3333-4444-555555555555"
        // the cache key of `other`'s token for SCOPE, written as one scope of this tenant
        const lookalike = `${other}|${SCOPE}|nocae`
        const a = yield* credential.getToken(lookalike)
        const b = yield* credential.getToken(SCOPE, { tenantId: other })
        assert.deepStrictEqual([tokenValue(a), tokenValue(b)], ["tok-1", "tok-2"])
        assert.strictEqual(requests.length, 2)
        assert.strictEqual(requests[0]!.form.scope, lookalike)
        assert.include(requests[1]!.url.pathname, other)
        // and each is served from its own entry
        assert.strictEqual(tokenValue(yield* credential.getToken(lookalike)), "tok-1")
        assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE, { tenantId: other })), "tok-2")
        assert.strictEqual(requests.length, 2)
      }), { additionallyAllowedTenants: ["*"] }))

  it.effect("a token kept in memory under its scope string is persisted under the full key", () =>
    Effect.gen(function*() {
      const saved: Array<string> = []
      const backend = Layer.succeed(TokenCache.TokenCache, {
        load: () => Effect.succeed(Option.none()),
        save: (key) => Effect.sync(() => void saved.push(key))
      })
      yield* withCredentialOver(
        ClientSecretCredential.layer(options()).pipe(Layer.provide(backend)),
        () => json(200, tokenBody("tok")),
        (credential) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            yield* credential.getToken(SCOPE, { enableCae: true })
          })
      )
      assert.strictEqual(saved.length, 2)
      assert.isTrue(saved[0]!.endsWith(`|${CLIENT}|${TENANT}|${SCOPE}|nocae`), saved[0])
      assert.isTrue(saved[1]!.endsWith(`|${CLIENT}|${TENANT}|${SCOPE}|cae`), saved[1])
    }))

  it.effect("more request shapes than the credential remembers: tokens stay cached, validation still runs", () =>
    withCredential((_, i) => json(200, tokenBody(`tok-${i + 1}`)), (credential, requests) =>
      Effect.gen(function*() {
        const scopes = Array.from({ length: memoLimit + 10 }, (_, i) => `https://r${i}.example/.default`)
        for (const scope of scopes) yield* credential.getToken(scope)
        for (const scope of scopes) yield* credential.getToken([scope], { tenantId: TENANT })
        assert.strictEqual(requests.length, scopes.length)
        // the memo started over (twice): the first scopes are served from the cache all the same
        assert.strictEqual(tokenValue(yield* credential.getToken(scopes[0]!)), "tok-1")
        assert.strictEqual(tokenValue(yield* credential.getToken([scopes[1]!], { tenantId: TENANT })), "tok-2")
        assert.strictEqual(requests.length, scopes.length)
        const invalid = yield* Effect.flip(credential.getToken("bad scope"))
        assert.strictEqual(invalid._tag, "CredentialUnavailableError")
      })))

  it.effect("in the refresh window returns the cached token at once and refreshes once in the background", () =>
    withCredential((_, i) => json(200, tokenBody(`tok-${i + 1}`)), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        // 1 h token: refreshOn = expiry - 5 min = T0 + 55 min
        yield* TestClock.adjust("56 minutes")
        const [a, b, c] = yield* Effect.all([
          credential.getToken(SCOPE),
          credential.getToken(SCOPE),
          credential.getToken(SCOPE)
        ], { concurrency: "unbounded" })
        assert.deepStrictEqual([a, b, c].map(tokenValue), ["tok-1", "tok-1", "tok-1"])
        yield* settle
        assert.strictEqual(requests.length, 2)
        const after = yield* credential.getToken(SCOPE)
        assert.strictEqual(tokenValue(after), "tok-2")
        assert.strictEqual(DateTime.toEpochMillis(after.expiresOn), T0 + 56 * 60_000 + 3600_000)
      })))

  it.effect("a failed background refresh keeps serving the cached token and is retried later", () =>
    withCredential((_, i) =>
      i === 0
        ? json(200, tokenBody("tok-1"))
        : i === 1
        ? json(400, { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret." })
        : json(200, tokenBody("tok-3")), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        yield* TestClock.adjust("56 minutes")
        assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "tok-1")
        yield* settle
        assert.strictEqual(requests.length, 2)
        // still cached, and no new attempt before the retry delay
        assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "tok-1")
        yield* settle
        assert.strictEqual(requests.length, 2)
        yield* TestClock.adjust("31 seconds")
        assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "tok-1")
        yield* settle
        assert.strictEqual(requests.length, 3)
        assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "tok-3")
      })))

  it.effect("past the must-refresh point callers wait for one shared request", () =>
    Effect.gen(function*() {
      const latch = yield* Deferred.make<void>()
      return yield* withCredential(
        (_, i) =>
          i === 0 ? json(200, tokenBody("tok-1")) : Effect.as(Deferred.await(latch), json(200, tokenBody("tok-2"))),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            yield* TestClock.adjust(Duration.seconds(59 * 60 + 40)) // 20 s before expiry
            const fibers = yield* Effect.forEach(
              Array.from({ length: 10 }),
              () => Effect.fork(credential.getToken(SCOPE))
            )
            yield* settle
            assert.strictEqual(requests.length, 2)
            for (const f of fibers) assert.isTrue(Option.isNone(yield* Fiber.poll(f)))
            yield* Deferred.succeed(latch, undefined)
            const tokens = yield* Effect.forEach(fibers, Fiber.join)
            assert.deepStrictEqual([...new Set(tokens.map(tokenValue))], ["tok-2"])
            assert.strictEqual(requests.length, 2)
          })
      )
    }))

  it.effect("a refusal past the must-refresh point reaches every waiter and is held for 30 s, not asked again", () =>
    withCredential(
      (_, i) =>
        i === 0
          ? json(200, tokenBody("tok-1"))
          : i === 1
          ? json(401, { error: "invalid_client" })
          : json(200, tokenBody("tok-3")),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          yield* TestClock.adjust("1 hour")
          const exits = yield* Effect.all(
            [credential.getToken(SCOPE), credential.getToken(SCOPE)].map(Effect.exit),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(requests.length, 2)
          for (const exit of exits) assert.strictEqual(failureOf(exit)._tag, "ClientAuthenticationError")
          // held: calls within 30 s get the same refusal without a request
          yield* TestClock.adjust(29_999)
          const held = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(held._tag, "ClientAuthenticationError")
          assert.strictEqual(requests.length, 2)
          yield* TestClock.adjust(1)
          const next = yield* credential.getToken(SCOPE)
          assert.strictEqual(tokenValue(next), "tok-3")
          assert.strictEqual(requests.length, 3)
        })
    ))

  it.effect("an expired secret answered at once with 401: thousands of calls send one request per hold period", () =>
    withCredential(
      () => json(401, { error: "invalid_client", error_codes: [7000222] }),
      (credential, requests) =>
        Effect.gen(function*() {
          for (let round = 0; round < 3; round++) {
            yield* Effect.all(
              Array.from({ length: 1000 }, () => Effect.exit(credential.getToken(SCOPE))),
              { concurrency: "unbounded" }
            )
            for (let i = 0; i < 1000; i++) yield* Effect.exit(credential.getToken(SCOPE))
            yield* TestClock.adjust("10 seconds")
          }
          assert.strictEqual(requests.length, 1) // 30 s of calls: one request
          yield* Effect.exit(credential.getToken(SCOPE))
          assert.strictEqual(requests.length, 2)
        })
    ))

  it.effect("the hold is configurable (TokenCache.layerPolicy) and 0 turns it off", () =>
    Effect.gen(function*() {
      for (const [hold, expected] of [[5_000, 2], [0, 4]] as const) {
        yield* withCredentialOver(
          ClientSecretCredential.layer(options()).pipe(
            Layer.provide(TokenCache.layerPolicy({ failureHoldMillis: hold }))
          ),
          () => json(400, { error: "unauthorized_client" }),
          (credential, requests) =>
            Effect.gen(function*() {
              yield* Effect.exit(credential.getToken(SCOPE))
              yield* Effect.exit(credential.getToken(SCOPE))
              yield* TestClock.adjust(4_999)
              yield* Effect.exit(credential.getToken(SCOPE))
              yield* TestClock.adjust(1)
              yield* Effect.exit(credential.getToken(SCOPE))
              assert.strictEqual(requests.length, expected, `hold ${hold}`)
            })
        )
      }
    }))

  it.effect("throttling, server errors and unavailability are not held", () =>
    Effect.gen(function*() {
      for (const answer of [json(429, { error: "throttled" }), json(503, { error: "unavailable" })]) {
        yield* withCredential(
          () => answer.clone(),
          (credential, requests) =>
            Effect.gen(function*() {
              yield* Effect.exit(credential.getToken(SCOPE))
              const before = requests.length
              yield* Effect.exit(credential.getToken(SCOPE))
              assert.isAbove(requests.length, before)
            }),
          { retryPolicy: noRetry }
        )
      }
      yield* withCredential(
        () => reset,
        (credential, requests) =>
          Effect.gen(function*() {
            const first = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(first._tag, "CredentialUnavailableError")
            yield* Effect.exit(credential.getToken(SCOPE))
            assert.strictEqual(requests.length, 2)
          }),
        { retryPolicy: noRetry }
      )
    }))

  it.effect("a token that arrives already expired (expires_in 0) is a typed error, not a success", () =>
    withCredential(
      () => json(200, tokenBody("dead", 0)),
      (credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          assert.include(error.message, "already expired")
        })
    ))

  it.effect("a short-lived token (20 s) is returned and served for half its life, then asked for again", () =>
    withCredential(
      (_, i) => json(200, tokenBody(`short-${i}`, 20)),
      (credential, requests) =>
        Effect.gen(function*() {
          assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "short-0")
          yield* TestClock.adjust(9_999)
          assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "short-0")
          assert.strictEqual(requests.length, 1)
          yield* TestClock.adjust(1)
          assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "short-1")
          assert.strictEqual(requests.length, 2)
        })
    ))

  it.effect("100 concurrent cold callers make exactly one request", () =>
    Effect.gen(function*() {
      const latch = yield* Deferred.make<void>()
      return yield* withCredential(
        () => Effect.as(Deferred.await(latch), json(200, tokenBody("shared"))),
        (credential, requests) =>
          Effect.gen(function*() {
            const fibers = yield* Effect.forEach(Array.from({ length: 100 }), () =>
              Effect.fork(credential.getToken(SCOPE)))
            yield* settle
            yield* Deferred.succeed(latch, undefined)
            const tokens = yield* Effect.forEach(fibers, Fiber.join)
            assert.strictEqual(tokens.length, 100)
            assert.isTrue(tokens.every((t) =>
              tokenValue(t) === "shared"
            ))
            assert.strictEqual(requests.length, 1)
          })
      )
    }))

  it.effect("an interrupted caller does not cancel the request for the others", () =>
    Effect.gen(function*() {
      const latch = yield* Deferred.make<void>()
      return yield* withCredential(
        () => Effect.as(Deferred.await(latch), json(200, tokenBody("survivor"))),
        (credential, requests) =>
          Effect.gen(function*() {
            const first = yield* Effect.fork(credential.getToken(SCOPE))
            yield* settle
            const second = yield* Effect.fork(credential.getToken(SCOPE))
            yield* settle
            yield* Fiber.interrupt(first)
            yield* Deferred.succeed(latch, undefined)
            const token = yield* Fiber.join(second)
            assert.strictEqual(tokenValue(token), "survivor")
            assert.strictEqual(requests.length, 1)
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "survivor")
            assert.strictEqual(requests.length, 1)
          })
      )
    }))

  it.effect("honours Retry-After on 429", () =>
    withCredential(
      (_, i) =>
        i === 0
          ? json(429, { error: "temporarily_unavailable" }, { "retry-after": "7" })
          : json(200, tokenBody("late")),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(credential.getToken(SCOPE))
          yield* settle
          assert.strictEqual(requests.length, 1)
          yield* TestClock.adjust("6999 millis")
          yield* settle
          assert.strictEqual(requests.length, 1)
          yield* TestClock.adjust("1 millis")
          const token = yield* Fiber.join(fiber)
          assert.strictEqual(tokenValue(token), "late")
          assert.strictEqual(requests.length, 2)
          // expiry counts from when the successful request was sent
          assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + 7000 + 3600_000)
        })
    ))

  it.effect("honours Retry-After given as an HTTP date", () =>
    withCredential(
      (_, i) =>
        i === 0
          ? json(503, {}, { "retry-after": new Date(T0 + 12_000).toUTCString() })
          : json(200, tokenBody("dated")),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(credential.getToken(SCOPE))
          yield* TestClock.adjust("11 seconds")
          yield* settle
          assert.strictEqual(requests.length, 1)
          yield* TestClock.adjust("1 second")
          assert.strictEqual(tokenValue(yield* Fiber.join(fiber)), "dated")
        })
    ))

  it.effect("a 5xx storm ends after 3 retries with a typed error", () =>
    withCredential(
      () => json(503, { error: "temporarily_unavailable", error_description: "busy" }),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
          yield* TestClock.adjust("1 minute")
          const error = failureOf(yield* Fiber.join(fiber))
          assert.strictEqual(requests.length, 4)
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          if (error._tag !== "ClientAuthenticationError") return
          assert.strictEqual(error.status, 503)
          assert.include(error.message, "after 4 attempts")
        })
    ))

  it.effect("statuses that alternate share one retry budget", () =>
    withCredential(
      // a flapping gateway: 500, reset, 500, reset, … then (too late) a token
      (_, i) => (i >= 40 ? json(200, tokenBody("late")) : i % 2 === 0 ? json(500, {}) : reset),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
          yield* TestClock.adjust("2 minutes")
          const error = failureOf(yield* Fiber.join(fiber))
          assert.strictEqual(requests.length, 4)
          assert.include(error.message, "after 4 attempts")
        })
    ))

  it.effect("does not retry other 4xx", () =>
    withCredential(() => json(400, { error: "invalid_request" }), (credential, requests) =>
      Effect.gen(function*() {
        yield* Effect.exit(credential.getToken(SCOPE))
        assert.strictEqual(requests.length, 1)
      })))

  describe("bad answers give typed errors that say what to do and never leak the secret", () => {
    const cases: ReadonlyArray<[string, () => Answer, string, string]> = [
      [
        "400 invalid_client",
        () =>
          json(401, {
            error: "invalid_client",
            error_description: "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c",
            error_codes: [7000215],
            trace_id: "trace-1",
            correlation_id: "corr-1",
            timestamp: "2026-11-27 08:00:00Z"
          }),
        "ClientAuthenticationError",
        "secret's value"
      ],
      [
        "HTML error page",
        () => text(502, "<html><title>502 Bad Gateway</title></html>"),
        "ClientAuthenticationError",
        "502 Bad Gateway"
      ],
      [
        "HTML with 200",
        () => text(200, "<html><title>Sign in</title><body>x</body></html>"),
        "ClientAuthenticationError",
        "Microsoft Entra ID"
      ],
      [
        "malformed JSON",
        () => text(200, "{\"access_token\": \"tok", "application/json"),
        "ClientAuthenticationError",
        "not JSON"
      ],
      [
        "200 without access_token",
        () => json(200, { token_type: "Bearer", expires_in: 3600 }),
        "ClientAuthenticationError",
        "missing access_token"
      ],
      [
        "expires_in of a wrong type",
        () => json(200, { access_token: "leaky-token", expires_in: { x: 1 } }),
        "ClientAuthenticationError",
        "expires_in"
      ],
      [
        "expires_in not numeric",
        () => json(200, { access_token: "leaky-token", expires_in: "soon" }),
        "ClientAuthenticationError",
        "expires_in"
      ],
      [
        "expires_in beyond any representable date",
        () => json(200, { access_token: "leaky-token", expires_in: 1e13 }),
        "ClientAuthenticationError",
        "expires_in"
      ],
      ["a reset connection", () => reset, "CredentialUnavailableError", "ECONNRESET"],
      ["an empty body", () => text(500, "", "text/plain"), "ClientAuthenticationError", "empty body"]
    ]
    for (const [title, answer, tag, hint] of cases) {
      it.effect(title, () =>
        withCredential(answer, (credential) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
            yield* TestClock.adjust("2 minutes")
            const error = failureOf(yield* Fiber.join(fiber))
            assert.strictEqual(error._tag, tag)
            assert.include(error.message, hint)
            assert.include(error.message, "ClientSecretCredential")
            assertNoSecret(error, SECRET, "leaky-token")
          })))
    }

    it.effect("keeps Entra's error fields on the error", () =>
      withCredential(cases[0]![1], (credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          if (error._tag !== "ClientAuthenticationError") return
          assert.strictEqual(error.error, "invalid_client")
          assert.deepStrictEqual(error.errorCodes, [7000215])
          assert.strictEqual(error.traceId, "trace-1")
          assert.strictEqual(error.correlationId, "corr-1")
          assert.strictEqual(error.status, 401)
          assert.include(error.message, "corr-1")
        })))

    it.effect("an invalid tenant id", () =>
      withCredential(() => json(200, tokenBody()), (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "invalid tenant id")
          assert.strictEqual(requests.length, 0)
        }), { tenantId: "bad tenant/../x" }))

    it.effect("a requested tenant of dots only is refused: it would leave the tenant's endpoint", () =>
      withCredential(() => json(200, tokenBody()), (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: ".." })))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "invalid tenant id")
          assert.strictEqual(requests.length, 0)
        }), { additionallyAllowedTenants: ["*"] }))

    it.effect("an http: authority that is not loopback", () =>
      withCredential(() => json(200, tokenBody()), (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "https://login.example.test")
          assert.strictEqual(requests.length, 0)
        }), { authorityHost: "http://login.example.test" }))

    it.effect("an invalid scope", () =>
      withCredential(() => json(200, tokenBody()), (credential, requests) =>
        Effect.gen(function*() {
          for (const scopes of [[], ["two words"], [""]]) {
            const error = failureOf(yield* Effect.exit(credential.getToken(scopes)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
          }
          assert.strictEqual(requests.length, 0)
        })))

    it.effect("a scope holding a control character is refused even after a valid call that joins to the same text", () =>
      withCredential(() => json(200, tokenBody()), (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(["https://a.example/.default", "https://b.example/.default"])
          const error = failureOf(
            yield* Effect.exit(credential.getToken(["https://a.example/.default\u0001https://b.example/.default"]))
          )
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "invalid scope")
          assert.strictEqual(requests.length, 1)
        })))

    it.effect("an empty secret", () =>
      withCredential(() => json(200, tokenBody()), (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "AZURE_CLIENT_SECRET")
          assert.strictEqual(requests.length, 0)
        }), { clientSecret: Redacted.make("") }))
  })

  describe("multi-tenant", () => {
    const OTHER = "99999999-2222-3333-4444-555555555555"
    it.effect("refuses another tenant unless allowed, naming the option to set", () =>
      withCredential(() => json(200, tokenBody()), (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: OTHER })))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "additionallyAllowedTenants")
          assert.include(error.message, "AZURE_ADDITIONALLY_ALLOWED_TENANTS")
          assert.include(error.message, OTHER)
          assert.include(error.message, TENANT)
          assert.strictEqual(requests.length, 0)
          // the configured tenant is always fine
          yield* credential.getToken(SCOPE, { tenantId: TENANT })
          assert.strictEqual(requests.length, 1)
        })))

    it.effect("allows listed tenants, per tenant cache", () =>
      withCredential(
        (r) => json(200, tokenBody(`tok-${r.url.pathname.split("/")[1]}`)),
        (credential, requests) =>
          Effect.gen(function*() {
            const other = yield* credential.getToken(SCOPE, { tenantId: OTHER })
            const mine = yield* credential.getToken(SCOPE)
            assert.strictEqual(tokenValue(other), `tok-${OTHER}`)
            assert.strictEqual(tokenValue(mine), `tok-${TENANT}`)
            assert.strictEqual(requests[0]!.url.pathname, `/${OTHER}/oauth2/v2.0/token`)
            assert.strictEqual(requests.length, 2)
          }),
        { additionallyAllowedTenants: [OTHER] }
      ))

    it.effect("allows any tenant with * from AZURE_ADDITIONALLY_ALLOWED_TENANTS", () =>
      withCredential(
        () => json(200, tokenBody()),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE, { tenantId: OTHER })
            assert.strictEqual(requests[0]!.url.pathname, `/${OTHER}/oauth2/v2.0/token`)
          }),
        {},
        { AZURE_ADDITIONALLY_ALLOWED_TENANTS: "x.onmicrosoft.com; *" }
      ))
  })

  describe("CAE and claims", () => {
    it.effect("enableCae sends the CP1 capability and caches separately", () =>
      withCredential(() => json(200, tokenBody()), (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE, { enableCae: true })
          yield* credential.getToken(SCOPE, { enableCae: true })
          yield* credential.getToken(SCOPE)
          assert.strictEqual(requests.length, 2)
          assert.deepStrictEqual(JSON.parse(requests[0]!.form.claims!), {
            access_token: { xms_cc: { values: ["CP1"] } }
          })
          assert.isUndefined(requests[1]!.form.claims)
        })))

    it.effect("claims bypass the cache, are forwarded merged with CP1, and the new token is stored", () =>
      withCredential((_, i) => json(200, tokenBody(`tok-${i + 1}`)), (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE, { enableCae: true })
          const challenge = JSON.stringify({ access_token: { nbf: { essential: true, value: "1700000000" } } })
          const fresh = yield* credential.getToken(SCOPE, { enableCae: true, claims: challenge })
          assert.strictEqual(tokenValue(fresh), "tok-2")
          assert.strictEqual(requests.length, 2)
          assert.deepStrictEqual(JSON.parse(requests[1]!.form.claims!), {
            access_token: { nbf: { essential: true, value: "1700000000" }, xms_cc: { values: ["CP1"] } }
          })
          assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE, { enableCae: true })), "tok-2")
          assert.strictEqual(requests.length, 2)
        })))
  })

  describe("configuration", () => {
    it.effect("layerConfig reads AZURE_* through Config", () => {
      const http = mockHttp(() => json(200, tokenBody("from-env")))
      return Effect.gen(function*() {
        yield* setNow
        const token = yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual(tokenValue(token), "from-env")
        assert.strictEqual(http.requests[0]!.url.href, `http://127.0.0.1:1/${TENANT}/oauth2/v2.0/token`)
        assert.strictEqual(http.requests[0]!.form.client_secret, SECRET)
      }).pipe(
        Effect.provide(ClientSecretCredential.layerConfig().pipe(Layer.provide(http.layer))),
        withEnv({
          AZURE_TENANT_ID: TENANT,
          AZURE_CLIENT_ID: CLIENT,
          AZURE_CLIENT_SECRET: SECRET,
          AZURE_AUTHORITY_HOST: "http://127.0.0.1:1/"
        })
      )
    })

    it.effect("missing configuration is unavailable, naming the variables and never failing the layer", () => {
      const http = mockHttp(() => json(200, tokenBody()))
      return Effect.gen(function*() {
        const error = failureOf(yield* Effect.exit(TokenCredential.getToken(SCOPE)))
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "AZURE_CLIENT_SECRET")
        assert.include(error.message, "AZURE_TENANT_ID")
        assert.strictEqual(http.requests.length, 0)
      }).pipe(
        Effect.provide(ClientSecretCredential.layerConfig().pipe(Layer.provide(http.layer))),
        withEnv({ AZURE_CLIENT_ID: CLIENT })
      )
    })

    it.effect("an invalid AZURE_AUTHORITY_HOST is reported by name", () =>
      withCredential(
        () => json(200, tokenBody()),
        (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.include(error.message, "AZURE_AUTHORITY_HOST")
          }),
        { authorityHost: undefined },
        { AZURE_AUTHORITY_HOST: "ftp://x" }
      ))
  })

  it.effect("never logs the secret or the token, even when refreshes fail", () => {
    const logs = captureLogs()
    return withCredential(
      (_, i) =>
        i === 0
          ? json(200, tokenBody("tok-secret-1"))
          : json(401, { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided." }),
      (credential) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          yield* TestClock.adjust("56 minutes")
          yield* credential.getToken(SCOPE)
          yield* settle
          yield* Effect.logDebug("token", yield* credential.getToken(SCOPE))
          yield* TestClock.adjust("10 minutes")
          const exit = yield* Effect.exit(credential.getToken(SCOPE))
          yield* Effect.logError("failed", exit)
          assert.isTrue(logs.lines.some((l) => l.includes("background token refresh failed")))
          for (const line of logs.lines) {
            assert.notInclude(line, SECRET)
            assert.notInclude(line, "tok-secret-1")
          }
        })
    ).pipe(Effect.provide(logs.layer))
  })
})

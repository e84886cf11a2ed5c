import { assert, describe, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import { ClientAssertionCredential, IdentityError, TokenCredential } from "../src/index.js"
import { assertNoSecret, failureOf, setNow, settle, withCredentialOver, withEnv } from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { dieHttp, json, mockHttp, tokenBody } from "./support/mockHttp.js"

const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const SCOPE = "https://vault.azure.net/.default"
const AUTHORITY = "https://login.example.test"
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/** A counting assertion source: `assertion-1`, `assertion-2`, … */
const counting = Effect.gen(function*() {
  const calls = yield* Ref.make(0)
  const getAssertion = Ref.updateAndGet(calls, (n) => n + 1).pipe(
    Effect.map((n) => Redacted.make(`assertion-${n}`))
  )
  return { calls, getAssertion }
})

const withCredential = <A, E, AE>(
  getAssertion: Effect.Effect<string | Redacted.Redacted<string>, AE>,
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>
) =>
  withCredentialOver(
    ClientAssertionCredential.layer({ tenantId: TENANT, clientId: CLIENT, getAssertion, authorityHost: AUTHORITY }),
    handler,
    f
  )

class SourceDown extends Data.TaggedError("SourceDown")<{ readonly message: string }> {}

describe("ClientAssertionCredential", () => {
  it.effect("sends the callback's assertion verbatim with the jwt-bearer type", () =>
    withCredential(
      Effect.succeed("eyJ.header.sig\n"),
      () => json(200, tokenBody("tok-1")),
      (credential, requests) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(Redacted.value(token.token), "tok-1")
          assert.strictEqual(requests[0]!.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
          assert.deepStrictEqual(requests[0]!.form, {
            client_id: CLIENT,
            grant_type: "client_credentials",
            client_assertion: "eyJ.header.sig",
            client_assertion_type: ASSERTION_TYPE,
            scope: SCOPE
          })
        })
    ))

  it.effect("calls getAssertion once per network request, never on a cache hit", () =>
    Effect.gen(function*() {
      const { calls, getAssertion } = yield* counting
      return yield* withCredential(getAssertion, (_, i) =>
        json(200, tokenBody(`tok-${i}`)), (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.strictEqual(yield* Ref.get(calls), 1)
          yield* TestClock.adjust("10 minutes")
          yield* credential.getToken(SCOPE)
          assert.strictEqual(yield* Ref.get(calls), 1)
          yield* credential.getToken("https://graph.microsoft.com/.default")
          assert.strictEqual(yield* Ref.get(calls), 2)
          // concurrent callers for a new key share one request and one assertion
          yield* Effect.all(
            Array.from({ length: 5 }, () =>
              credential.getToken("https://storage.azure.com/.default")),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(yield* Ref.get(calls), 3)
          // a claims challenge bypasses the cache: a new request, a new assertion
          yield* credential.getToken(SCOPE, { claims: "{\"access_token\":{\"acrs\":{\"values\":[\"c1\"]}}}" })
          assert.strictEqual(yield* Ref.get(calls), 4)
          assert.deepStrictEqual(requests.map((r) => r.form.client_assertion), [
            "assertion-1",
            "assertion-2",
            "assertion-3",
            "assertion-4"
          ])
          // background refresh (the claims token, obtained at 10 min, lives 1 h: refresh from 65 min) asks for a new
          // assertion too, while the caller gets the cached token at once
          yield* TestClock.adjust("56 minutes")
          yield* credential.getToken(SCOPE)
          yield* settle
          assert.strictEqual(yield* Ref.get(calls), 5)
          assert.strictEqual(requests.at(-1)!.form.client_assertion, "assertion-5")
        }))
    }))

  it.effect("a retried attempt gets a fresh assertion", () =>
    Effect.gen(function*() {
      const { calls, getAssertion } = yield* counting
      return yield* withCredential(
        getAssertion,
        (_, i) =>
          i === 0 ? json(503, { error: "temporarily_unavailable" }, { "retry-after": "2" }) : json(200, tokenBody()),
        (credential, requests) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(credential.getToken(SCOPE))
            yield* settle
            yield* TestClock.adjust("2 seconds")
            yield* Fiber.join(fiber)
            assert.strictEqual(yield* Ref.get(calls), 2)
            assert.deepStrictEqual(requests.map((r) => r.form.client_assertion), ["assertion-1", "assertion-2"])
          })
      )
    }))

  it.effect("a failing getAssertion is CredentialUnavailableError naming the failure; no request is sent", () =>
    withCredential(
      Effect.fail(new SourceDown({ message: "the OIDC issuer is down" })),
      () => json(200, tokenBody()),
      (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "getAssertion failed (SourceDown: the OIDC issuer is down)")
          assert.strictEqual(requests.length, 0)
        })
    ))

  it.effect("describes plain errors and non-errors too", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[unknown, string]> = [
        [new TypeError("bad\nsecond line"), "getAssertion failed (TypeError: bad)"],
        ["just a string", "getAssertion failed (string)"],
        [{ code: 42 }, "getAssertion failed (object)"]
      ]
      for (const [failure, expected] of cases) {
        const error = yield* withCredential(Effect.fail(failure), () =>
          json(200, tokenBody()), (credential) =>
          Effect.map(Effect.exit(credential.getToken(SCOPE)), failureOf))
        assert.include(error.message, expected)
      }
    }))

  it.effect("errors of this library from getAssertion pass through unchanged", () =>
    Effect.gen(function*() {
      const unavailable = new IdentityError.CredentialUnavailableError({ credential: "Upstream", reason: "no token" })
      const failed = new IdentityError.ClientAuthenticationError({ credential: "Upstream", reason: "refused" })
      for (const original of [unavailable, failed]) {
        const error = yield* withCredential(Effect.fail(original), dieAnswer, (credential) =>
          Effect.map(Effect.exit(credential.getToken(SCOPE)), failureOf))
        assert.strictEqual(error._tag, original._tag)
        assert.strictEqual(error.message, original.message)
      }
    }))

  it.effect("an empty assertion is CredentialUnavailableError", () =>
    withCredential(Effect.succeed(Redacted.make("  \n")), dieAnswer, (credential) =>
      Effect.gen(function*() {
        const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "getAssertion returned an empty assertion")
      })))

  it.effect("an assertion Entra rejects is ClientAuthenticationError, without the assertion in it", () =>
    withCredential(
      Effect.succeed(Redacted.make("eyJsecret.assertion.value")),
      () =>
        json(400, {
          error: "invalid_client",
          error_description: "AADSTS700024: Client assertion is not within its valid time range.",
          error_codes: [700024]
        }),
      (credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          assert.include(error.message, "outside its validity window")
          assertNoSecret(error, "eyJsecret.assertion.value")
        })
    ))

  it.effect("layerConfig reads AZURE_TENANT_ID and AZURE_CLIENT_ID; missing ones are named", () =>
    Effect.gen(function*() {
      yield* setNow
      const http = mockHttp(() => json(200, tokenBody("cfg")))
      const token = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.provide(ClientAssertionCredential.layerConfig(Effect.succeed("a.b.c")).pipe(Layer.provide(http.layer))),
        withEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT, AZURE_AUTHORITY_HOST: AUTHORITY })
      )
      assert.strictEqual(Redacted.value(token.token), "cfg")
      assert.strictEqual(http.requests[0]!.form.client_id, CLIENT)
      const exit = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.provide(ClientAssertionCredential.layerConfig(Effect.succeed("a.b.c")).pipe(Layer.provide(dieHttp))),
        Effect.exit,
        withEnv({ AZURE_TENANT_ID: TENANT })
      )
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "missing configuration: AZURE_CLIENT_ID")
    }))
})

/** For tests that must not reach the network. */
const dieAnswer = (): Answer => {
  throw new Error("no request expected")
}

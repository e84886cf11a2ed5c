import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import {
  BearerToken,
  ChainedTokenCredential,
  IdentityError,
  TestCredential,
  TestHttpClient,
  TokenCredential
} from "../src/index.js"
import { failureOf } from "./support/helpers.js"

const VAULT = "https://vault.azure.net/.default"
const unavailable = new IdentityError.CredentialUnavailableError({
  credential: "TestCredential",
  reason: "scripted",
  code: "endpoint-unreachable"
})

describe("TestCredential", () => {
  it.effect("a fixed token expiring relative to the Clock; calls counted and recorded with their options", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000_000)
      const token = yield* TokenCredential.getToken(VAULT, { tenantId: "other", enableCae: true })
      assert.strictEqual(Redacted.value(token.token), "fixed")
      assert.strictEqual(token.credential, "TestCredential")
      assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), 1_000_000 + 5 * 60_000)
      yield* TestClock.adjust("1 minute")
      yield* TokenCredential.getToken(["a/.default", "b/.default"])
      const calls = yield* TestCredential.calls
      assert.strictEqual(yield* TestCredential.count, 2)
      assert.deepStrictEqual(calls.map((c) => c.scopes), [[VAULT], ["a/.default", "b/.default"]])
      assert.deepStrictEqual(calls[0]!.options, { tenantId: "other", enableCae: true })
      assert.strictEqual(DateTime.toEpochMillis(calls[1]!.at), 1_060_000)
    }).pipe(Effect.provide(TestCredential.layer({ token: "fixed", expiresIn: "5 minutes" }))))

  it.effect("scripted outcomes in order, the last one repeating; failures are the errors given", () =>
    Effect.gen(function*() {
      const first = yield* TokenCredential.getToken(VAULT)
      assert.strictEqual(Redacted.value(first.token), "one")
      assert.strictEqual(DateTime.toEpochMillis(first.expiresOn), 30_000)
      const second = failureOf(yield* Effect.exit(TokenCredential.getToken(VAULT)))
      assert.strictEqual(second._tag, "CredentialUnavailableError")
      assert.strictEqual(second.message, unavailable.message)
      assert.strictEqual((second as IdentityError.CredentialUnavailableError).code, "endpoint-unreachable")
      const third = yield* TokenCredential.getToken(VAULT)
      assert.strictEqual(Redacted.value(third.token), "two")
      assert.strictEqual(Redacted.value((yield* TokenCredential.getToken(VAULT)).token), "two")
      assert.strictEqual(yield* TestCredential.count, 4)
    }).pipe(
      Effect.provide(
        TestCredential.layer({ outcomes: [TestCredential.token("one", "30 seconds"), unavailable, "two"] })
      )
    ))

  it.effect("respond decides from the scopes; inside a chain the failure moves on to the next link", () =>
    Effect.gen(function*() {
      const chain = ChainedTokenCredential.make(
        (yield* TestCredential.make({ name: "First", outcomes: [unavailable] })).credential,
        (yield* TestCredential.make({
          name: "Second",
          respond: (call) => `token-for-${call.scopes.join(",")}`
        })).credential
      )
      const token = yield* chain.getToken("api://x/.default")
      assert.strictEqual(Redacted.value(token.token), "token-for-api://x/.default")
      assert.strictEqual(token.credential, "Second")
    }))

  it.effect("each build of the layer starts afresh", () =>
    Effect.gen(function*() {
      const layer = TestCredential.layer()
      const once = Effect.zipRight(TokenCredential.getToken(VAULT), TestCredential.count)
      assert.strictEqual(yield* Effect.provide(once, layer), 1)
      assert.strictEqual(yield* Effect.provide(once, layer), 1)
    }))
})

describe("TestHttpClient", () => {
  it.effect("answers from a function; records method, URL, headers and form body", () =>
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      const response = yield* client.execute(
        HttpClientRequest.post("https://login.example.test/t/oauth2/v2.0/token").pipe(
          HttpClientRequest.setHeader("x-test", "1"),
          HttpClientRequest.bodyUrlParams({ grant_type: "client_credentials", scope: VAULT })
        )
      )
      assert.strictEqual(response.status, 200)
      assert.strictEqual((yield* response.json as Effect.Effect<{ access_token: string }, unknown>).access_token, "t1")
      const [request] = yield* TestHttpClient.requests
      assert.strictEqual(request!.method, "POST")
      assert.strictEqual(request!.url.pathname, "/t/oauth2/v2.0/token")
      assert.strictEqual(request!.headers["x-test"], "1")
      assert.deepStrictEqual(request!.form, { grant_type: "client_credentials", scope: VAULT })
    }).pipe(Effect.provide(TestHttpClient.layer(() => TestHttpClient.tokenResponse("t1")))))

  it.effect("a queue of answers: a reset fails the request; a request beyond the queue is a defect naming it", () =>
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      assert.strictEqual((yield* client.get("https://a.test/1")).status, 503)
      const reset = yield* Effect.exit(client.get("https://a.test/2"))
      assert.isTrue(Exit.isFailure(reset))
      const beyond = yield* Effect.exit(client.get("https://a.test/3"))
      assert.isTrue(Exit.isFailure(beyond) && String(beyond.cause).includes("request 3 (GET https://a.test/3)"))
      assert.strictEqual((yield* TestHttpClient.requests).length, 3)
    }).pipe(
      Effect.provide(TestHttpClient.layer([TestHttpClient.json(503, {}), TestHttpClient.connectionReset]))
    ))

  it.effect("with TestCredential: BearerToken sends the scripted tokens, asking the credential per request", () =>
    Effect.gen(function*() {
      const client = (yield* HttpClient.HttpClient).pipe(BearerToken.authenticate({ scopes: VAULT }))
      yield* client.get("https://vault.example.test/secrets/a")
      yield* client.get("https://vault.example.test/secrets/a")
      const sent = (yield* TestHttpClient.requests).map((r) => r.headers["authorization"])
      assert.deepStrictEqual(sent, ["Bearer one", "Bearer two"])
      assert.strictEqual(yield* TestCredential.count, 2)
    }).pipe(
      Effect.provide(TestHttpClient.layer(() => TestHttpClient.json(200, {}))),
      Effect.provide(TestCredential.layer({ outcomes: ["one", "two"], expiresIn: "5 minutes" }))
    ))
})

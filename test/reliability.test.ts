/**
 * Issue 13's reliability items on the token path, with a mock HttpClient and the TestClock: deeply nested JSON and
 * absurd tokens are typed errors; a chain holding a managed identity gives up on an absent IMDS at once (refused) or
 * within 2 s (silent); alone, within 5 s; the retries a real IMDS needs (410, 429, 5xx) stay.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import type { TokenCredential } from "../src/index.js"
import {
  ChainedTokenCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  RetryOptions
} from "../src/index.js"
import { failureOf, settle, tokenValue, withCredentialOver } from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, reset, text, tokenBody } from "./support/mockHttp.js"

const SCOPE = "https://vault.azure.net/.default"
const IMDS = "http://127.0.0.1:9"

const secretLayer = (retryPolicy?: RetryOptions.RetryOptions) =>
  ClientSecretCredential.layer({
    tenantId: "11111111-2222-3333-4444-555555555555",
    clientId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    clientSecret: Redacted.make("reliability-secret"),
    authorityHost: "https://login.example.test",
    ...(retryPolicy !== undefined ? { retryPolicy } : {})
  })

/** A token response whose `expires_in` is `depth` nested arrays: about 6 KB for 3,000. */
const nested = (depth: number) => `{"access_token":"a","expires_in":${"[".repeat(depth)}${"]".repeat(depth)}}`

const withMi = <A, E>(
  chained: boolean,
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  options: ManagedIdentityCredential.Options = {}
) => {
  const mi = ManagedIdentityCredential.layer({ imdsEndpoint: IMDS, ...options })
  const layer = chained ? ChainedTokenCredential.layer(mi) : mi
  return withCredentialOver(layer, handler, f, {
    deps: (http) => Layer.merge(http.layer, FileSystem.layerNoop({}))
  }).pipe(Effect.withRandom(Random.make("reliability")))
}

const imdsToken = (token: string) => ({ access_token: token, expires_in: "86400", token_type: "Bearer" })

describe("bad server input is a typed error", () => {
  it.effect("3,000 nested arrays in expires_in: ClientAuthenticationError, not a RangeError", () =>
    withCredentialOver(
      secretLayer(),
      () => text(200, nested(3000), "application/json"),
      (credential) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(credential.getToken(SCOPE))
          assert.isTrue(Exit.isFailure(exit))
          const error = failureOf(exit)
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          assert.include(error.message, "nested more than 64 levels")
        })
    ))

  it.effect("the same in a managed identity answer", () =>
    withMi(false, () => text(200, nested(3000), "application/json"), (credential) =>
      Effect.gen(function*() {
        const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "nested more than 64 levels")
      })))

  it.effect("an access token over 64 KB or with a control character is refused", () =>
    Effect.gen(function*() {
      for (const token of ["x".repeat(64 * 1024 + 1), "abc\r\nX-Injected: 1", "abc\u0000def"]) {
        const entra = yield* withCredentialOver(
          secretLayer(),
          () => json(200, tokenBody(token)),
          (credential) => Effect.exit(credential.getToken(SCOPE))
        )
        const e1 = failureOf(entra)
        assert.strictEqual(e1._tag, "ClientAuthenticationError")
        assert.include(e1.message, "access_token")
        assert.notInclude(e1.message, token)
        const mi = yield* withMi(false, () =>
          json(200, imdsToken(token)), (credential) =>
          Effect.exit(credential.getToken(SCOPE)))
        const e2 = failureOf(mi)
        assert.strictEqual(e2._tag, "ClientAuthenticationError")
        assert.include(e2.message, "access_token")
      }
      // a 64 KB token is still accepted
      const ok = yield* withCredentialOver(
        secretLayer(),
        () =>
          json(200, tokenBody("y".repeat(64 * 1024))),
        (credential) => credential.getToken(SCOPE)
      )
      assert.strictEqual(tokenValue(ok).length, 64 * 1024)
    }))
})

describe("retries as a Schedule", () => {
  for (const header of ["retry-after-ms", "x-ms-retry-after-ms"]) {
    it.effect(`honours ${header}`, () =>
      withCredentialOver(
        secretLayer(),
        (_, i) => (i === 0 ? json(429, { error: "throttled" }, { [header]: "2500" }) : json(200, tokenBody("later"))),
        (credential, requests) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(credential.getToken(SCOPE))
            yield* settle
            yield* TestClock.adjust("2499 millis")
            yield* settle
            assert.strictEqual(requests.length, 1)
            yield* TestClock.adjust("1 millis")
            assert.strictEqual(tokenValue(yield* Fiber.join(fiber)), "later")
            assert.strictEqual(requests.length, 2)
          })
      ))
  }

  it.effect("RetryOptions: fields left out keep their defaults; maxRetries 1 means two attempts", () =>
    withCredentialOver(
      secretLayer({ maxRetries: 1 }),
      () => json(503, {}),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
          yield* settle
          // the default 1 s base, jittered to 50–100 %
          yield* TestClock.adjust("499 millis")
          yield* settle
          assert.strictEqual(requests.length, 1)
          yield* TestClock.adjust("501 millis")
          const error = failureOf(yield* Fiber.join(fiber))
          assert.strictEqual(requests.length, 2)
          assert.include(error.message, "after 2 attempts")
          assert.strictEqual(RetryOptions.defaults.maxRetries, 3)
        })
    ))
})

describe("chains never stall outside Azure", () => {
  it.effect("in a chain, a refused IMDS is given up at once: one request, no clock needed", () =>
    withMi(true, () => reset, (credential, requests) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* settle
        const done = yield* Fiber.poll(fiber)
        assert.isTrue(Option.isSome(done), "finished without the clock moving")
        const error = failureOf(yield* Fiber.join(fiber))
        assert.strictEqual(error._tag, "ChainedAuthenticationError")
        assert.include(error.message, "could not be reached")
        assert.strictEqual(requests.length, 1)
      })))

  it.effect("in a chain, a silent IMDS is given up after the 1 s probe, well within 2 s", () =>
    withMi(true, () => Effect.never, (credential, requests) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* settle
        yield* TestClock.adjust("999 millis")
        yield* settle
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        yield* settle
        assert.isTrue(Option.isSome(yield* Fiber.poll(fiber)), "finished at 1 s")
        assert.include(failureOf(yield* Fiber.join(fiber)).message, "did not answer the probe within 1000 ms")
        assert.strictEqual(requests.length, 1)
      })))

  it.effect("in a chain, after a good probe a connection failure is not retried; 500 and 410 still are", () =>
    Effect.gen(function*() {
      const probeThen = (answer: (i: number) => Answer) => (r: Recorded, i: number) =>
        r.headers["metadata"] === undefined ? json(400, { error: "bad_request_102" }) : answer(i)
      const refused = yield* withMi(
        true,
        probeThen(() => reset),
        (credential, requests) =>
          Effect.map(Effect.exit(credential.getToken(SCOPE)), (exit) => [exit, requests.length] as const)
      )
      assert.strictEqual(failureOf(refused[0])._tag, "ChainedAuthenticationError")
      assert.strictEqual(refused[1], 2)
      const flaky = yield* withMi(
        true,
        probeThen((i) => (i === 1 ? json(500, {}) : i === 2 ? json(410, {}) : json(200, imdsToken("after-retries")))),
        (credential, requests) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(credential.getToken(SCOPE))
            yield* TestClock.adjust("10 seconds")
            const token = yield* Fiber.join(fiber)
            return [tokenValue(token), requests.length] as const
          })
      )
      assert.deepStrictEqual(flaky, ["after-retries", 4])
    }))

  it.effect("alone, a refused IMDS is given up within 5 s after three attempts", () =>
    withMi(false, () => reset, (credential, requests) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* settle
        yield* TestClock.adjust("4999 millis")
        yield* settle
        assert.isTrue(Option.isSome(yield* Fiber.poll(fiber)), "finished before 5 s")
        assert.include(failureOf(yield* Fiber.join(fiber)).message, "after 3 attempts")
        assert.strictEqual(requests.length, 3)
      })))

  it.effect("probe: false inside a chain keeps the credential's own retries", () =>
    withMi(true, () => reset, (credential, requests) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(fiber)
        assert.strictEqual(requests.length, 3)
        assert.isUndefined(requests.find((r) => r.headers["metadata"] === undefined))
      }), { probe: false }))
})

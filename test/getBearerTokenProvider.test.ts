/**
 * AzureSdk.getBearerTokenProvider: the token kept per provider, background refresh from 2 minutes before expiry,
 * forced refresh within 1 second, failures, null answers, shared requests; time from TestClock through the runtime.
 */
import type * as CoreAuth from "@azure/core-auth"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as AccessToken from "../src/AccessToken.js"
import { AzureSdk, TokenCredential } from "../src/index.js"
import { setNow, settle, T0 } from "./support/helpers.js"

const SCOPE = "https://cognitiveservices.azure.com/.default"
const HOUR = 60 * 60 * 1000

interface Call {
  readonly scopes: string | Array<string>
  readonly options: CoreAuth.GetTokenOptions | undefined
}

/** A core-auth credential answering from a script of results; each token lives one hour from the clock's now. */
const scripted = (results: Array<"ok" | "fail" | "null" | "pending">, nowMillis: () => number) => {
  const calls: Array<Call> = []
  const pending: Array<() => void> = []
  const credential: CoreAuth.TokenCredential = {
    getToken: (scopes, options) => {
      calls.push({ scopes, options })
      const n = calls.length
      const result = results[n - 1] ?? "ok"
      const token = { token: `token-${n}`, expiresOnTimestamp: nowMillis() + HOUR }
      if (result === "fail") {
        return Promise.reject(Object.assign(new Error(`refused ${n}`), { name: "AuthenticationError" }))
      }
      if (result === "null") return Promise.resolve(null)
      if (result === "pending") return new Promise((resolve) => pending.push(() => resolve(token)))
      return Promise.resolve(token)
    }
  }
  return { calls, credential, pending }
}

const setup = (results: Array<"ok" | "fail" | "null" | "pending"> = []) =>
  Effect.gen(function*() {
    yield* setNow
    const runtime = yield* Effect.runtime<never>()
    let now = T0
    const clockNow = () => now
    const script = scripted(results, clockNow)
    const provider = AzureSdk.getBearerTokenProvider(script.credential, [SCOPE], { runtime })
    const call = Effect.promise(() => provider())
    const advance = (millis: number) =>
      Effect.gen(function*() {
        now += millis
        yield* TestClock.adjust(millis)
      })
    return { ...script, call, advance, provider }
  })

const failureMessage = (promise: () => Promise<string>) =>
  Effect.promise(() => promise().then(() => "resolved", (error: Error) => `${error.name}: ${error.message}`))

describe("AzureSdk.getBearerTokenProvider", () => {
  it.effect("asks once with enableCae, keeps the token until 2 minutes before expiry", () =>
    Effect.gen(function*() {
      const { advance, call, calls } = yield* setup()
      assert.strictEqual(yield* call, "token-1")
      assert.deepStrictEqual(calls[0]!.scopes, [SCOPE])
      assert.deepStrictEqual(calls[0]!.options, { enableCae: true })
      yield* advance(HOUR - 2 * 60 * 1000 - 1)
      assert.strictEqual(yield* call, "token-1")
      assert.strictEqual(calls.length, 1)
    }))

  it.effect("in the refresh window: the kept token at once, one background refresh, then the new token", () =>
    Effect.gen(function*() {
      const { advance, call, calls } = yield* setup()
      yield* call
      yield* advance(HOUR - 60 * 1000)
      assert.strictEqual(yield* call, "token-1")
      assert.strictEqual(calls.length, 2)
      yield* settle
      assert.strictEqual(yield* call, "token-2")
      assert.strictEqual(calls.length, 2)
    }))

  it.effect("a failed background refresh is ignored and retried at most every 3 seconds", () =>
    Effect.gen(function*() {
      const { advance, call, calls } = yield* setup(["ok", "fail", "ok"])
      yield* call
      yield* advance(HOUR - 60 * 1000)
      assert.strictEqual(yield* call, "token-1")
      yield* settle
      assert.strictEqual(yield* call, "token-1")
      assert.strictEqual(calls.length, 2)
      yield* advance(2999)
      assert.strictEqual(yield* call, "token-1")
      assert.strictEqual(calls.length, 2)
      yield* advance(1)
      assert.strictEqual(yield* call, "token-1")
      assert.strictEqual(calls.length, 3)
      yield* settle
      assert.strictEqual(yield* call, "token-3")
    }))

  it.effect("refreshAfterTimestamp starts the background refresh earlier", () =>
    Effect.gen(function*() {
      yield* setNow
      const runtime = yield* Effect.runtime<never>()
      let n = 0
      const credential: CoreAuth.TokenCredential = {
        getToken: () =>
          Promise.resolve({
            token: `t${++n}`,
            expiresOnTimestamp: T0 + 10 * HOUR,
            refreshAfterTimestamp: T0 + HOUR
          })
      }
      const provider = AzureSdk.getBearerTokenProvider(credential, SCOPE, { runtime })
      assert.strictEqual(yield* Effect.promise(provider), "t1")
      yield* TestClock.adjust(HOUR - 1)
      assert.strictEqual(yield* Effect.promise(provider), "t1")
      assert.strictEqual(n, 1)
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* Effect.promise(provider), "t1")
      assert.strictEqual(n, 2)
    }))

  it.effect("within 1 second of expiry, callers wait; a failure rejects and is not kept", () =>
    Effect.gen(function*() {
      const { advance, call, calls, provider } = yield* setup(["ok", "fail", "ok"])
      yield* call
      yield* advance(HOUR - 1000)
      assert.strictEqual(yield* failureMessage(provider), "AuthenticationError: refused 2")
      assert.strictEqual(yield* call, "token-3")
      assert.strictEqual(calls.length, 3)
    }))

  it.effect("null from the credential rejects with Failed to get access token", () =>
    Effect.gen(function*() {
      const { provider } = yield* setup(["null"])
      assert.strictEqual(yield* failureMessage(provider), "Error: Failed to get access token")
    }))

  it.effect("concurrent first callers share one request", () =>
    Effect.gen(function*() {
      const { calls, pending, provider } = yield* setup(["pending"])
      const a = provider()
      const b = provider()
      yield* settle
      assert.strictEqual(calls.length, 1)
      pending[0]!()
      const both = yield* Effect.promise(() => Promise.all([a, b]))
      assert.deepStrictEqual(both, ["token-1", "token-1"])
    }))

  it.effect("over a credential of this library (toTokenCredential), with abortSignal and enableCae passed", () =>
    Effect.gen(function*() {
      yield* setNow
      const runtime = yield* Effect.runtime<never>()
      const seen: Array<TokenCredential.GetTokenOptions | undefined> = []
      const layer = Layer.succeed(
        TokenCredential.TokenCredential,
        TokenCredential.make("Fake", (_scopes, options) =>
          Effect.sync(() => {
            seen.push(options)
            return AccessToken.make({ token: "lib-token", obtainedAtMillis: T0, expiresOnMillis: T0 + HOUR })
          }))
      )
      const credential = AzureSdk.toTokenCredential(layer)
      const controller = new AbortController()
      const provider = AzureSdk.getBearerTokenProvider(credential, SCOPE, {
        runtime,
        abortSignal: controller.signal,
        enableCae: false
      })
      assert.strictEqual(yield* Effect.promise(provider), "lib-token")
      assert.deepStrictEqual(seen, [{ enableCae: false }])
      yield* Effect.promise(() => credential.close())
    }))
})

/**
 * `AzureSdk.toTokenCredential` serves a fresh cached token without running a fiber: these tests pin down that it
 * answers exactly what the fiber path would, and hands everything else to it. The fast path is observed through
 * spans: the fiber path records an `AzureSdk.getToken` span, the synchronous path none.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import { getEventListeners } from "node:events"
import {
  AccessToken,
  AzureSdk,
  ChainedTokenCredential,
  ClientSecretCredential,
  EnvironmentCredential,
  IdentityError,
  TokenCredential
} from "../src/index.js"
import { setNow, T0, withEnv } from "./support/helpers.js"
import type { Recorded } from "./support/mockHttp.js"
import { json, mockHttp, tokenBody } from "./support/mockHttp.js"

const SCOPE = "https://vault.azure.net/.default"
const TENANT = "11111111-2222-3333-4444-555555555555"
const OTHER_TENANT = "99999999-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const AUTHORITY = "https://login.example.test"

const rejection = async (promise: Promise<unknown>): Promise<any> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the promise to reject")
}

/**
 * A ClientSecretCredential over a mock token endpoint (token `tok-N` for the N-th request, 401 for the scope
 * `https://denied.example/.default`), wrapped by `AzureSdk.toTokenCredential` over a runtime that carries the test's
 * `TestClock` and a tracer recording span names.
 */
const secretCredential = ClientSecretCredential.layer({
  tenantId: TENANT,
  clientId: CLIENT,
  clientSecret: Redacted.make("s3cret-value"),
  authorityHost: AUTHORITY,
  additionallyAllowedTenants: [OTHER_TENANT]
})

const withSdk = <A>(
  f: (sdk: AzureSdk.AzureTokenCredential, requests: Array<Recorded>, spans: () => number) => Effect.Effect<A>,
  credential: Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient> = secretCredential,
  env: Record<string, string> = {}
) => {
  const http = mockHttp((request, index) =>
    request.form.scope === "https://denied.example/.default"
      ? json(401, { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret." })
      : json(200, tokenBody(`tok-${index + 1}`))
  )
  const names: Array<string> = []
  return Effect.gen(function*() {
    yield* setNow
    const native = yield* Effect.tracer
    const tracer = Tracer.make({
      span: (...args: Parameters<Tracer.Tracer["span"]>) => {
        names.push(args[0])
        return native.span(...args)
      },
      context: native.context
    })
    return yield* Effect.gen(function*() {
      const runtime = yield* Effect.runtime<TokenCredential.TokenCredential>()
      const sdk = AzureSdk.toTokenCredential(runtime)
      return yield* f(sdk, http.requests, () => names.filter((n) => n === "AzureSdk.getToken").length)
    }).pipe(Effect.withTracer(tracer))
  }).pipe(Effect.provide(Layer.provide(credential, http.layer)), withEnv(env))
}

describe("AzureSdk.toTokenCredential: the synchronous path for fresh cached tokens", () => {
  it.effect("answers the same token as the fiber path, without a fiber, a span or a request", () =>
    withSdk((sdk, requests, spans) =>
      Effect.gen(function*() {
        const first = yield* Effect.promise(() => sdk.getToken(SCOPE))
        assert.strictEqual(spans(), 1)
        const second = yield* Effect.promise(() => sdk.getToken(SCOPE))
        const asArray = yield* Effect.promise(() => sdk.getToken([SCOPE]))
        assert.deepStrictEqual(second, first)
        assert.deepStrictEqual(asArray, first)
        assert.strictEqual(first.token, "tok-1")
        assert.strictEqual(first.expiresOnTimestamp, T0 + 3600_000)
        assert.strictEqual(spans(), 1, "the cached calls ran no fiber")
        assert.strictEqual(requests.length, 1)
      })
    ))

  it.effect("reads the runtime's clock: a refresh due goes through the fiber path, which refreshes in the background", () =>
    withSdk((sdk, requests, spans) =>
      Effect.gen(function*() {
        const first = yield* Effect.promise(() => sdk.getToken(SCOPE))
        // one millisecond before the refresh time (by the TestClock, not the wall clock): still served synchronously
        yield* TestClock.setTime(first.refreshAfterTimestamp! - 1)
        yield* Effect.promise(() => sdk.getToken(SCOPE))
        assert.strictEqual(spans(), 1)
        yield* TestClock.setTime(first.refreshAfterTimestamp!)
        const during = yield* Effect.promise(() => sdk.getToken(SCOPE))
        assert.strictEqual(during.token, "tok-1", "the cached token is served while it refreshes")
        assert.strictEqual(spans(), 2, "a refresh due is the fiber path's decision")
        for (let i = 0; i < 100 && requests.length < 2; i++) yield* Effect.yieldNow()
        assert.strictEqual(requests.length, 2)
        for (let i = 0; i < 100; i++) yield* Effect.yieldNow()
        const refreshed = yield* Effect.promise(() => sdk.getToken(SCOPE))
        assert.strictEqual(refreshed.token, "tok-2")
        assert.strictEqual(spans(), 2, "the refreshed token is fresh again: synchronous")
      })
    ))

  it.effect("a token about to expire is never served synchronously: the caller waits for a new one", () =>
    withSdk((sdk, requests, spans) =>
      Effect.gen(function*() {
        const first = yield* Effect.promise(() => sdk.getToken(SCOPE))
        yield* TestClock.setTime(first.expiresOnTimestamp - 10_000)
        const next = yield* Effect.promise(() => sdk.getToken(SCOPE))
        assert.strictEqual(next.token, "tok-2")
        assert.strictEqual(spans(), 2)
        assert.strictEqual(requests.length, 2)
      })
    ))

  it.effect("claims always go to the authority; tenantId and enableCae are their own cache entries", () =>
    withSdk((sdk, requests, spans) =>
      Effect.gen(function*() {
        yield* Effect.promise(() => sdk.getToken(SCOPE))
        const claims = "{\"access_token\":{\"nbf\":{\"essential\":true,\"value\":\"1\"}}}"
        const challenged = yield* Effect.promise(() => sdk.getToken(SCOPE, { claims }))
        assert.strictEqual(challenged.token, "tok-2")
        assert.strictEqual(requests[1]!.form.claims, claims)
        assert.strictEqual(spans(), 2)
        // the challenged token replaced the cached one, as the fiber path stores it
        assert.strictEqual((yield* Effect.promise(() => sdk.getToken(SCOPE))).token, "tok-2")
        assert.strictEqual(spans(), 2)

        const other = yield* Effect.promise(() => sdk.getToken(SCOPE, { tenantId: OTHER_TENANT }))
        assert.strictEqual(other.token, "tok-3")
        assert.include(requests[2]!.url.pathname, OTHER_TENANT)
        assert.strictEqual(spans(), 3)
        assert.strictEqual(
          (yield* Effect.promise(() => sdk.getToken(SCOPE, { tenantId: OTHER_TENANT }))).token,
          "tok-3"
        )
        assert.strictEqual(spans(), 3)

        const cae = yield* Effect.promise(() => sdk.getToken(SCOPE, { enableCae: true }))
        assert.strictEqual(cae.token, "tok-4")
        assert.include(requests[3]!.form.claims, "CP1")
        assert.strictEqual(spans(), 4)
        assert.strictEqual((yield* Effect.promise(() => sdk.getToken(SCOPE, { enableCae: true }))).token, "tok-4")
        assert.strictEqual((yield* Effect.promise(() => sdk.getToken(SCOPE))).token, "tok-2")
        assert.strictEqual(spans(), 4)
        assert.strictEqual(requests.length, 4)
      })
    ))

  it.effect("invalid requests and failures still go through the fiber path and keep their Azure SDK names", () =>
    withSdk((sdk, requests, spans) =>
      Effect.gen(function*() {
        yield* Effect.promise(() => sdk.getToken(SCOPE))
        const badScope = yield* Effect.promise(() => rejection(sdk.getToken("")))
        assert.strictEqual(badScope.name, "CredentialUnavailableError")
        const badTenant = yield* Effect.promise(() => rejection(sdk.getToken(SCOPE, { tenantId: "not allowed!" })))
        assert.strictEqual(badTenant.name, "CredentialUnavailableError")
        const denied = yield* Effect.promise(() => rejection(sdk.getToken("https://denied.example/.default")))
        assert.strictEqual(denied.name, "AuthenticationError")
        assert.strictEqual(denied.statusCode, 401)
        assert.isTrue(IdentityError.isIdentityError(denied.cause))
        // what a JavaScript caller may pass: a rejected promise, never a synchronous throw
        const garbage = yield* Effect.sync(() => sdk.getToken(undefined as unknown as string))
        assert.instanceOf(garbage, Promise)
        assert.isDefined(yield* Effect.promise(() => rejection(garbage)))
        assert.strictEqual(spans(), 5)
        assert.strictEqual(requests.length, 2)
      })
    ))

  it.effect("an aborted signal rejects with an AbortError even when a fresh token is cached", () =>
    withSdk((sdk, requests, spans) =>
      Effect.gen(function*() {
        yield* Effect.promise(() => sdk.getToken(SCOPE))
        const controller = new AbortController()
        controller.abort()
        const error = yield* Effect.promise(() => rejection(sdk.getToken(SCOPE, { abortSignal: controller.signal })))
        assert.strictEqual(error.name, "AbortError")
        // a live signal does not stop the synchronous path, and adds no listener
        const live = new AbortController()
        assert.strictEqual(
          (yield* Effect.promise(() => sdk.getToken(SCOPE, { abortSignal: live.signal }))).token,
          "tok-1"
        )
        assert.strictEqual(getEventListeners(live.signal, "abort").length, 0)
        assert.strictEqual(spans(), 1)
        assert.strictEqual(requests.length, 1)
      })
    ))
})

describe("AzureSdk.toTokenCredential: the synchronous path through chains", () => {
  const unavailable = TokenCredential.make(
    "Unavailable",
    () => Effect.fail(new IdentityError.CredentialUnavailableError({ credential: "Unavailable", reason: "not here" }))
  )
  const env = {
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT,
    AZURE_CLIENT_SECRET: "s3cret-value",
    AZURE_AUTHORITY_HOST: AUTHORITY
  }
  const chain = (rememberWinner: boolean) =>
    Layer.scoped(
      TokenCredential.TokenCredential,
      Effect.map(
        EnvironmentCredential.make(),
        (environment) => ChainedTokenCredential.makeWith([unavailable, environment], { rememberWinner })
      )
    ).pipe(Layer.provide(FileSystem.layerNoop({})))

  it.effect("a chain that remembers its winner (DefaultAzureCredential) serves the winner's fresh token", () =>
    withSdk(
      (sdk, requests, spans) =>
        Effect.gen(function*() {
          const first = yield* Effect.promise(() => sdk.getToken(SCOPE))
          const second = yield* Effect.promise(() => sdk.getToken(SCOPE))
          assert.deepStrictEqual(second, first)
          assert.strictEqual(first.token, "tok-1")
          assert.strictEqual(spans(), 1)
          assert.strictEqual(requests.length, 1)
        }),
      chain(true),
      env
    ))

  it.effect("a chain that asks its first link every time never answers from a later link's cache", () =>
    withSdk(
      (sdk, requests, spans) =>
        Effect.gen(function*() {
          yield* Effect.promise(() => sdk.getToken(SCOPE))
          const second = yield* Effect.promise(() => sdk.getToken(SCOPE))
          assert.strictEqual(second.token, "tok-1")
          assert.strictEqual(spans(), 2, "the first link (unavailable) must be asked again: the fiber path")
          assert.strictEqual(requests.length, 1)
        }),
      chain(false),
      env
    ))
})

describe("AzureSdk.toTokenCredential: many calls sharing one AbortSignal", () => {
  const waitingLayer = (gate: Promise<void>) =>
    Layer.succeed(
      TokenCredential.TokenCredential,
      TokenCredential.make("Waiting", () =>
        Effect.as(
          Effect.promise(() => gate),
          AccessToken.make({ token: "tok", obtainedAtMillis: T0, expiresOnMillis: T0 + 3600_000 })
        ))
    )

  it("add one listener to the signal (no MaxListenersExceededWarning) and remove it when done", async () => {
    const warnings: Array<Error> = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on("warning", onWarning)
    try {
      let open!: () => void
      const gate = new Promise<void>((resolve) => (open = resolve))
      const credential = AzureSdk.toTokenCredential(waitingLayer(gate))
      const controller = new AbortController()
      const pending = Array.from({ length: 25 }, () => credential.getToken(SCOPE, { abortSignal: controller.signal }))
      await new Promise((resolve) => setImmediate(resolve)) // a process warning is emitted on the next tick
      assert.deepStrictEqual(warnings.map((w) => w.name), [])
      assert.strictEqual(getEventListeners(controller.signal, "abort").length, 1)
      open()
      const tokens = await Promise.all(pending)
      assert.strictEqual(tokens.length, 25)
      assert.strictEqual(getEventListeners(controller.signal, "abort").length, 0)
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepStrictEqual(warnings.map((w) => w.name), [])
      await credential.close()
    } finally {
      process.off("warning", onWarning)
    }
  })

  it("aborting the shared signal rejects every call with an AbortError", async () => {
    const credential = AzureSdk.toTokenCredential(waitingLayer(new Promise<void>(() => {})))
    const controller = new AbortController()
    const pending = Array.from(
      { length: 15 },
      () => rejection(credential.getToken(SCOPE, { abortSignal: controller.signal }))
    )
    const other = new AbortController()
    const unaffected = credential.getToken(SCOPE, { abortSignal: other.signal })
    controller.abort()
    const errors = await Promise.all(pending)
    assert.deepStrictEqual(errors.map((e) => e.name), Array.from({ length: 15 }, () => "AbortError"))
    assert.strictEqual(getEventListeners(controller.signal, "abort").length, 0)
    assert.strictEqual(getEventListeners(other.signal, "abort").length, 1, "a call on another signal still waits")
    await credential.close()
    assert.strictEqual((await rejection(unaffected)).name, "CredentialUnavailableError")
  })
})

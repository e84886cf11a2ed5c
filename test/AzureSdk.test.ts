import type * as CoreAuth from "@azure/core-auth"
import { ChainedTokenCredential } from "@azure/identity"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { AccessToken, AzureSdk, IdentityError, TokenCredential } from "../src/index.js"
import { setNow, T0 } from "./support/helpers.js"

const SCOPE = "https://vault.azure.net/.default"
const TOKEN = "eyJ0eXAi.secret-token-value"

interface Call {
  readonly scopes: string | ReadonlyArray<string>
  readonly options: TokenCredential.GetTokenOptions | undefined
}

/** A credential layer whose getToken runs `behaviour`; counts how often the layer is built and released. */
const fakeLayer = (
  behaviour: (call: Call) => Effect.Effect<AccessToken.AccessToken, IdentityError.IdentityError> = () =>
    Effect.succeed(AccessToken.make({ token: TOKEN, obtainedAtMillis: T0, expiresOnMillis: T0 + 3600_000 }))
) => {
  const calls: Array<Call> = []
  const state = { built: 0, released: 0 }
  const layer = Layer.scoped(
    TokenCredential.TokenCredential,
    Effect.acquireRelease(
      Effect.sync(() => {
        state.built++
        return TokenCredential.make("FakeCredential", (scopes, options) =>
          Effect.suspend(() => {
            const call = { scopes, options }
            calls.push(call)
            return behaviour(call)
          }))
      }),
      () =>
        Effect.sync(() => {
          state.released++
        })
    )
  )
  return { calls, state, layer }
}

const rejection = async (promise: Promise<unknown>): Promise<any> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the promise to reject")
}

const assertNoSecret = (error: unknown, ...secrets: Array<string>) => {
  const forms = [String((error as Error).message), String(error), JSON.stringify(error), (error as Error).stack ?? ""]
  for (const secret of secrets) for (const form of forms) assert.notInclude(form, secret)
}

describe("AzureSdk.toTokenCredential", () => {
  it("returns the Azure SDK token shape in epoch milliseconds, and forwards tenantId, claims, enableCae", async () => {
    const fake = fakeLayer()
    const credential = AzureSdk.toTokenCredential(fake.layer)
    const token = await credential.getToken([SCOPE], { tenantId: "t2", claims: "{\"c\":1}", enableCae: true })
    const refreshOn = AccessToken.computeRefreshOnMillis(T0, T0 + 3600_000)
    assert.deepStrictEqual(token, {
      token: TOKEN,
      expiresOnTimestamp: T0 + 3600_000,
      refreshAfterTimestamp: refreshOn,
      tokenType: "Bearer"
    })
    assert.deepStrictEqual(fake.calls, [{
      scopes: [SCOPE],
      options: { tenantId: "t2", claims: "{\"c\":1}", enableCae: true }
    }])
    await credential.getToken(SCOPE)
    assert.deepStrictEqual(fake.calls[1], { scopes: SCOPE, options: {} })
    await credential.close()
  })

  it("builds the layer once, on the first call, and releases it on close()", async () => {
    const fake = fakeLayer()
    const credential = AzureSdk.toTokenCredential(fake.layer)
    assert.strictEqual(fake.state.built, 0)
    await Promise.all([credential.getToken(SCOPE), credential.getToken(SCOPE), credential.getToken(SCOPE)])
    await credential.getToken(SCOPE)
    assert.strictEqual(fake.state.built, 1)
    assert.strictEqual(fake.state.released, 0)
    await Promise.all([credential.close(), credential.close()])
    assert.strictEqual(fake.state.released, 1)
    const error = await rejection(credential.getToken(SCOPE))
    assert.strictEqual(error.name, "CredentialUnavailableError")
    assert.include(error.message, "closed")
    assert.strictEqual(fake.calls.length, 4)
  })

  it("maps pop tokens and tokens without a refresh time", async () => {
    const fake = fakeLayer(() =>
      Effect.succeed({
        token: Redacted.make(TOKEN),
        expiresOn: DateTime.unsafeMake(T0 + 60_000),
        refreshOn: Option.none(),
        tokenType: "PoP"
      })
    )
    const credential = AzureSdk.toTokenCredential(fake.layer)
    assert.deepStrictEqual(await credential.getToken(SCOPE), {
      token: TOKEN,
      expiresOnTimestamp: T0 + 60_000,
      tokenType: "pop"
    })
    await credential.close()
  })

  it("typed errors become Errors named as the Azure SDK expects, with the original message and no secret", async () => {
    const unavailable = new IdentityError.CredentialUnavailableError({
      credential: "EnvironmentCredential",
      reason: "missing configuration: AZURE_TENANT_ID"
    })
    const failed = new IdentityError.ClientAuthenticationError({
      credential: "ClientSecretCredential",
      reason: "AADSTS7000215: Invalid client secret provided.",
      status: 401,
      error: "invalid_client",
      errorDescription: "AADSTS7000215: Invalid client secret provided.",
      errorCodes: [7000215],
      correlationId: "corr-1",
      traceId: "trace-1",
      timestamp: "2026-11-27 08:00:00Z"
    })
    const required = new IdentityError.AuthenticationRequiredError({
      credential: "DeviceCodeCredential",
      reason: "sign in again",
      scopes: [SCOPE],
      claims: "{\"x\":1}"
    })
    const chained = new IdentityError.ChainedAuthenticationError({
      credential: "DefaultAzureCredential",
      errors: [unavailable, failed]
    })
    const expectations: Array<[IdentityError.IdentityError, string, (e: any) => void]> = [
      [unavailable, "CredentialUnavailableError", () => {}],
      [failed, "AuthenticationError", (e) => {
        assert.strictEqual(e.statusCode, 401)
        assert.deepStrictEqual(e.errorResponse, {
          error: "invalid_client",
          errorDescription: "AADSTS7000215: Invalid client secret provided.",
          errorCodes: [7000215],
          correlationId: "corr-1",
          traceId: "trace-1",
          timestamp: "2026-11-27 08:00:00Z"
        })
      }],
      [required, "AuthenticationRequiredError", (e) => {
        assert.deepStrictEqual(e.scopes, [SCOPE])
        assert.deepStrictEqual(e.getTokenOptions, { claims: "{\"x\":1}" })
      }],
      [chained, "AggregateAuthenticationError", (e) => {
        assert.deepStrictEqual(e.errors.map((x: Error) => x.name), [
          "CredentialUnavailableError",
          "AuthenticationError"
        ])
      }]
    ]
    for (const [typed, name, check] of expectations) {
      const credential = AzureSdk.toTokenCredential(fakeLayer(() => Effect.fail(typed)).layer)
      const error = await rejection(credential.getToken(SCOPE))
      assert.instanceOf(error, Error)
      assert.strictEqual(error.name, name)
      assert.strictEqual(error.message, typed.message)
      assert.strictEqual((error.cause as IdentityError.IdentityError)._tag, typed._tag)
      assert.isTrue(IdentityError.isIdentityError(error.cause))
      assert.include(String(error), `${name}: `)
      assertNoSecret(error, TOKEN)
      check(error)
      await credential.close()
    }
    const bare = AzureSdk.toAzureError(new IdentityError.ClientAuthenticationError({ credential: "X", reason: "no" }))
    assert.strictEqual(bare.statusCode, 400)
    assert.deepStrictEqual(bare.errorResponse, { error: "authentication_failed", errorDescription: "no" })
    const noClaims = AzureSdk.toAzureError(
      new IdentityError.AuthenticationRequiredError({ credential: "X", reason: "r", scopes: [] })
    )
    assert.deepStrictEqual(noClaims.getTokenOptions, {})
  })

  it("@azure/identity's ChainedTokenCredential reads the names: unavailable moves on, a failure stops", async () => {
    const next = { getToken: () => Promise.resolve({ token: "from-next", expiresOnTimestamp: T0 + 60_000 }) }
    const unavailable = AzureSdk.toTokenCredential(
      fakeLayer(() =>
        Effect.fail(new IdentityError.CredentialUnavailableError({ credential: "Fake", reason: "not configured" }))
      ).layer
    )
    const movedOn = await new ChainedTokenCredential(unavailable, next).getToken(SCOPE)
    assert.strictEqual(movedOn.token, "from-next")
    const failing = AzureSdk.toTokenCredential(
      fakeLayer(() =>
        Effect.fail(new IdentityError.ClientAuthenticationError({ credential: "Fake", reason: "invalid_client" }))
      ).layer
    )
    const error = await rejection(new ChainedTokenCredential(failing, next).getToken(SCOPE))
    assert.strictEqual(error.name, "AuthenticationError")
    assert.include(error.message, "invalid_client")
    await Promise.all([unavailable.close(), failing.close()])
  })

  it("an already aborted signal rejects with an AbortError without asking the credential", async () => {
    const fake = fakeLayer()
    const credential = AzureSdk.toTokenCredential(fake.layer)
    const controller = new AbortController()
    controller.abort()
    const error = await rejection(credential.getToken(SCOPE, { abortSignal: controller.signal }))
    assert.strictEqual(error.name, "AbortError")
    assert.strictEqual(fake.calls.length, 0)
    await credential.close()
  })

  it("abort interrupts the fiber and rejects at once with an AbortError", async () => {
    let interrupted!: () => void
    const wasInterrupted = new Promise<void>((resolve) => (interrupted = resolve))
    let started!: () => void
    const hasStarted = new Promise<void>((resolve) => (started = resolve))
    const fake = fakeLayer(() =>
      Effect.sync(() => started()).pipe(
        Effect.zipRight(Effect.never),
        Effect.onInterrupt(() => Effect.sync(() => interrupted()))
      )
    )
    const credential = AzureSdk.toTokenCredential(fake.layer)
    const controller = new AbortController()
    const pending = credential.getToken(SCOPE, { abortSignal: controller.signal })
    await hasStarted
    controller.abort()
    const error = await rejection(pending)
    assert.strictEqual(error.name, "AbortError")
    await wasInterrupted // resolves only if the fiber running getToken was interrupted
    await credential.close()
  })

  it("close() interrupts calls in flight: they reject as unavailable", async () => {
    let started!: () => void
    const hasStarted = new Promise<void>((resolve) => (started = resolve))
    const fake = fakeLayer(() => Effect.zipRight(Effect.sync(() => started()), Effect.never))
    const credential = AzureSdk.toTokenCredential(fake.layer)
    const pending = credential.getToken(SCOPE)
    await hasStarted
    await credential.close()
    const error = await rejection(pending)
    assert.strictEqual(error.name, "CredentialUnavailableError")
    assert.include(error.message, "closed while the request was in flight")
    assert.strictEqual(fake.state.released, 1)
  })

  it("a layer that fails to build, and a defect, reject", async () => {
    const broken = AzureSdk.toTokenCredential(
      Layer.fail(new Error("bad configuration")) as Layer.Layer<TokenCredential.TokenCredential, Error>
    )
    const error = await rejection(broken.getToken(SCOPE))
    assert.strictEqual(error.name, "CredentialUnavailableError")
    assert.include(error.message, "could not be built: Error: bad configuration")
    await broken.close()
    const weird = AzureSdk.toTokenCredential(
      Layer.fail({ message: "plain object" }) as Layer.Layer<TokenCredential.TokenCredential, unknown>
    )
    assert.include((await rejection(weird.getToken(SCOPE))).message, "plain object")
    await weird.close()
    const opaque = AzureSdk.toTokenCredential(
      Layer.fail(42) as Layer.Layer<TokenCredential.TokenCredential, unknown>
    )
    assert.include((await rejection(opaque.getToken(SCOPE))).message, "an unexpected error")
    await opaque.close()

    const defect = AzureSdk.toTokenCredential(fakeLayer(() => Effect.die(new TypeError("bug"))).layer)
    const died = await rejection(defect.getToken(SCOPE))
    assert.instanceOf(died, TypeError)
    await defect.close()
  })

  it("accepts a Runtime or a ManagedRuntime, which the caller owns", async () => {
    const fake = fakeLayer()
    const managed = ManagedRuntime.make(fake.layer)
    const fromManaged = AzureSdk.toTokenCredential(managed)
    assert.strictEqual((await fromManaged.getToken(SCOPE)).token, TOKEN)
    assert.isFalse("close" in fromManaged)
    const runtime = await managed.runtime()
    const fromRuntime = AzureSdk.toTokenCredential(runtime)
    assert.strictEqual((await fromRuntime.getToken(SCOPE)).token, TOKEN)
    assert.strictEqual(fake.state.built, 1)
    await managed.dispose()
    assert.strictEqual(fake.state.released, 1)
  })

  it("an interruption that is not an abort rejects as unavailable", async () => {
    const fake = fakeLayer(() => Effect.interrupt)
    const credential = AzureSdk.toTokenCredential(fake.layer)
    const error = await rejection(credential.getToken(SCOPE))
    assert.strictEqual(error.name, "CredentialUnavailableError")
    assert.include(error.message, "interrupted")
    await credential.close()
  })

  it("createCredential with a layer is a closable Promise credential", async () => {
    const fake = fakeLayer()
    const credential = AzureSdk.createCredential(fake.layer)
    assert.strictEqual((await credential.getToken(SCOPE)).token, TOKEN)
    await credential.close()
    assert.strictEqual(fake.state.released, 1)
  })
})

/** A JavaScript credential answering from `answer`, recording the options it receives. */
const jsCredential = (
  answer: (options: CoreAuth.GetTokenOptions | undefined) => Promise<CoreAuth.AccessToken | null>
) => {
  const seen: Array<{ scopes: string | Array<string>; options: CoreAuth.GetTokenOptions | undefined }> = []
  class MyAzureCredential implements CoreAuth.TokenCredential {
    getToken(scopes: string | Array<string>, options?: CoreAuth.GetTokenOptions) {
      seen.push({ scopes, options })
      return answer(options)
    }
  }
  return { credential: new MyAzureCredential(), seen }
}

const named = (name: string, message: string, fields: object = {}) =>
  Object.assign(Object.defineProperty(new Error(message), "name", { value: name }), fields)

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const f = Cause.failureOption(exit.cause)
  if (Option.isNone(f)) throw new Error(`expected a typed failure: ${Cause.pretty(exit.cause)}`)
  return f.value
}

describe("AzureSdk.fromTokenCredential", () => {
  it.effect("provides a TokenCredential: token Redacted, times from the Azure token, options forwarded", () =>
    Effect.gen(function*() {
      yield* setNow
      const js = jsCredential(() =>
        Promise.resolve({ token: TOKEN, expiresOnTimestamp: T0 + 3600_000, refreshAfterTimestamp: T0 + 1800_000 })
      )
      const token = yield* TokenCredential.getToken(SCOPE, { tenantId: "t2", claims: "{}", enableCae: true }).pipe(
        Effect.provide(AzureSdk.fromTokenCredential(js.credential))
      )
      assert.strictEqual(Redacted.value(token.token), TOKEN)
      assert.strictEqual(String(token.token), "<redacted>")
      assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + 3600_000)
      assert.deepStrictEqual(Option.map(token.refreshOn, DateTime.toEpochMillis), Option.some(T0 + 1800_000))
      assert.strictEqual(token.tokenType, "Bearer")
      const { options, scopes } = js.seen[0]!
      assert.deepStrictEqual(scopes, [SCOPE])
      assert.strictEqual(options?.tenantId, "t2")
      assert.strictEqual(options?.claims, "{}")
      assert.strictEqual(options?.enableCae, true)
      assert.isDefined(options?.abortSignal)
      const service = AzureSdk.makeFromTokenCredential(js.credential)
      assert.strictEqual(service.name, "MyAzureCredential")
      assert.strictEqual(AzureSdk.makeFromTokenCredential(js.credential, { name: "Mine" }).name, "Mine")
      assert.strictEqual(
        AzureSdk.makeFromTokenCredential({ getToken: () => Promise.resolve(null) }).name,
        "TokenCredential"
      )
    }))

  it.effect("computes refreshOn when the Azure token has none; keeps pop", () =>
    Effect.gen(function*() {
      yield* setNow
      const js = jsCredential(() =>
        Promise.resolve({ token: TOKEN, expiresOnTimestamp: T0 + 3600_000, tokenType: "pop" })
      )
      const token = yield* AzureSdk.makeFromTokenCredential(js.credential).getToken([SCOPE])
      assert.deepStrictEqual(
        Option.map(token.refreshOn, DateTime.toEpochMillis),
        Option.some(AccessToken.computeRefreshOnMillis(T0, T0 + 3600_000))
      )
      assert.strictEqual(token.tokenType, "pop")
    }))

  it.effect("null is unavailable; errors are mapped by name", () =>
    Effect.gen(function*() {
      const run = (thrown: unknown | null) =>
        Effect.exit(
          AzureSdk.makeFromTokenCredential(
            jsCredential(() => (thrown === null ? Promise.resolve(null) : Promise.reject(thrown))).credential
          ).getToken(SCOPE)
        ).pipe(Effect.map(failure))

      const none = yield* run(null)
      assert.strictEqual(none._tag, "CredentialUnavailableError")
      assert.include(none.message, "returned no token")

      const unavailable = yield* run(named("CredentialUnavailableError", "az not installed"))
      assert.strictEqual(unavailable._tag, "CredentialUnavailableError")
      assert.strictEqual(unavailable.message, "MyAzureCredential is unavailable: az not installed")

      const required = yield* run(named("AuthenticationRequiredError", "sign in", {
        scopes: [SCOPE, 3],
        getTokenOptions: { claims: "{\"c\":1}" }
      }))
      assert.strictEqual(required._tag, "AuthenticationRequiredError")
      if (required._tag === "AuthenticationRequiredError") {
        assert.deepStrictEqual(required.scopes, [SCOPE])
        assert.strictEqual(required.claims, "{\"c\":1}")
      }
      // @azure/identity's wrapping of Entra's refusals (MSAL ServerError) is an authentication failure
      const wrapped = yield* run(named("AuthenticationRequiredError", "invalid_client: AADSTS7000215", {
        cause: named("ServerError", "x", {
          errorCode: "invalid_client",
          status: 401,
          errorNo: "7000215",
          correlationId: "c"
        })
      }))
      assert.strictEqual(wrapped._tag, "ClientAuthenticationError")
      if (wrapped._tag === "ClientAuthenticationError") {
        assert.strictEqual(wrapped.status, 401)
        assert.strictEqual(wrapped.error, "invalid_client")
        assert.deepStrictEqual(wrapped.errorCodes, [7000215])
        assert.strictEqual(wrapped.correlationId, "c")
      }
      const wrappedBare = yield* run(named("AuthenticationRequiredError", "invalid_grant", {
        cause: named("ServerError", "x", { errorCode: "invalid_grant" })
      }))
      assert.strictEqual(wrappedBare._tag, "ClientAuthenticationError")
      const interaction = yield* run(named("AuthenticationRequiredError", "interaction", {
        cause: named("ServerError", "x", { errorCode: "interaction_required" })
      }))
      assert.strictEqual(interaction._tag, "AuthenticationRequiredError")
      const requiredBare = yield* run(named("AuthenticationRequiredError", "sign in"))
      if (requiredBare._tag === "AuthenticationRequiredError") assert.deepStrictEqual(requiredBare.scopes, [SCOPE])

      const auth = yield* run(named("AuthenticationError", "invalid_client Status code: 401", {
        statusCode: 401,
        errorResponse: {
          error: "invalid_client",
          errorDescription: "AADSTS7000215: Invalid client secret provided.",
          errorCodes: [7000215],
          correlationId: "c-1",
          traceId: "t-1",
          timestamp: "ts"
        }
      }))
      assert.strictEqual(auth._tag, "ClientAuthenticationError")
      if (auth._tag === "ClientAuthenticationError") {
        assert.strictEqual(auth.status, 401)
        assert.strictEqual(auth.error, "invalid_client")
        assert.deepStrictEqual(auth.errorCodes, [7000215])
        assert.strictEqual(auth.correlationId, "c-1")
        assert.strictEqual(auth.traceId, "t-1")
        assert.strictEqual(auth.timestamp, "ts")
        assert.strictEqual(auth.reason, "invalid_client Status code: 401")
      }

      const aggregate = yield* run(named("AggregateAuthenticationError", "chain failed", {
        errors: [
          named("CredentialUnavailableError", "env missing"),
          named("AggregateAuthenticationError", "inner", { errors: [named("AuthenticationError", "nope")] })
        ]
      }))
      assert.strictEqual(aggregate._tag, "ChainedAuthenticationError")
      if (aggregate._tag === "ChainedAuthenticationError") {
        assert.deepStrictEqual(aggregate.errors.map((e) => e._tag), [
          "CredentialUnavailableError",
          "ClientAuthenticationError"
        ])
      }
      const emptyAggregate = yield* run(named("AggregateAuthenticationError", "nothing"))
      if (emptyAggregate._tag === "ChainedAuthenticationError") {
        assert.strictEqual(emptyAggregate.errors[0]!._tag, "CredentialUnavailableError")
      }

      const rest = yield* run(named("RestError", "socket hang up"))
      assert.strictEqual(rest._tag, "ClientAuthenticationError")
      assert.include(rest.message, "RestError: socket hang up")

      const odd = yield* run("a string")
      assert.strictEqual(odd._tag, "ClientAuthenticationError")
      assert.include(odd.message, "failed without a message")
    }))

  it.effect("a token without a usable string or expiry is a typed failure, never a defect; the token stays out", () =>
    Effect.gen(function*() {
      yield* setNow
      const answers: Array<unknown> = [
        { token: TOKEN, expiresOnTimestamp: Number.NaN },
        { token: TOKEN, expiresOnTimestamp: 1e20 },
        { token: TOKEN, expiresOnTimestamp: "soon" },
        { token: TOKEN },
        { token: undefined, expiresOnTimestamp: T0 + 60_000 }
      ]
      for (const answer of answers) {
        const exit = yield* Effect.exit(
          AzureSdk.makeFromTokenCredential(
            jsCredential(() => Promise.resolve(answer as CoreAuth.AccessToken)).credential
          ).getToken(SCOPE)
        )
        const error = failure(exit)
        assert.strictEqual(error._tag, "ClientAuthenticationError", JSON.stringify(answer))
        assert.include(error.message, "MyAzureCredential")
        assert.notInclude(`${error.message} ${String(error)} ${JSON.stringify(error)}`, TOKEN)
      }
      // an unusable refresh time alone is replaced by the computed one
      const token = yield* AzureSdk.makeFromTokenCredential(
        jsCredential(() =>
          Promise.resolve({ token: TOKEN, expiresOnTimestamp: T0 + 3600_000, refreshAfterTimestamp: Number.NaN })
        ).credential
      ).getToken(SCOPE)
      assert.deepStrictEqual(
        Option.map(token.refreshOn, DateTime.toEpochMillis),
        Option.some(AccessToken.computeRefreshOnMillis(T0, T0 + 3600_000))
      )
    }))

  it.effect("interrupting getToken aborts the Azure call through its abortSignal", () =>
    Effect.gen(function*() {
      let signal: CoreAuth.GetTokenOptions["abortSignal"]
      const js = jsCredential((options) => {
        signal = options?.abortSignal
        return new Promise(() => {})
      })
      const fiber = yield* Effect.fork(AzureSdk.makeFromTokenCredential(js.credential).getToken(SCOPE))
      yield* TestClock.adjust(1)
      assert.isFalse(signal?.aborted)
      yield* Fiber.interrupt(fiber)
      assert.isTrue(signal?.aborted)
    }))

  it("round-trips every typed error through the Azure SDK names", () => {
    const errors: Array<IdentityError.IdentityError> = [
      new IdentityError.CredentialUnavailableError({ credential: "A", reason: "r" }),
      new IdentityError.ClientAuthenticationError({ credential: "A", reason: "r", status: 400, error: "e" }),
      new IdentityError.AuthenticationRequiredError({ credential: "A", reason: "r", scopes: [SCOPE] }),
      new IdentityError.ChainedAuthenticationError({
        credential: "A",
        errors: [new IdentityError.CredentialUnavailableError({ credential: "B", reason: "r" })]
      })
    ]
    for (const error of errors) {
      assert.strictEqual(AzureSdk.fromAzureError("A", [SCOPE], AzureSdk.toAzureError(error))._tag, error._tag)
    }
  })
})

import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import {
  AzureCliCredential,
  AzureSdk,
  ChainedTokenCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  IdentityError,
  IdentityMetrics,
  TestCredential,
  TokenCredential
} from "../src/index.js"
import { captureLogs, failureOf, setNow, withEnv } from "./support/helpers.js"
import { mockExecutor, notFound, output } from "./support/mockCommand.js"
import { json, mockHttp, reset, tokenBody } from "./support/mockHttp.js"
import { recordingTracer } from "./support/tracing.js"

const SCOPE = "https://vault.azure.net/.default"
const IMDS = "http://127.0.0.1:9"

describe("diagnostics", () => {
  it.effect("debug logs of a failing chain carry no 'Fiber terminated' defect noise", () => {
    const logs = captureLogs()
    const http = mockHttp((r) => (r.url.origin === IMDS ? Effect.never : reset))
    const layer = DefaultAzureCredential.layer({ managedIdentity: { imdsEndpoint: IMDS } }).pipe(
      Layer.provide(Layer.mergeAll(http.layer, mockExecutor(() => notFound).layer, FileSystem.layerNoop({})))
    )
    return Effect.gen(function*() {
      yield* setNow
      const credential = yield* TokenCredential.TokenCredential
      const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
      yield* TestClock.adjust("1 second")
      const error = failureOf(yield* Fiber.join(fiber))
      assert.strictEqual(error._tag, "ChainedAuthenticationError")
      if (error._tag === "ChainedAuthenticationError") {
        const codes = Object.fromEntries(error.errors.map((e) => [e.credential, e.code]))
        assert.strictEqual(codes["EnvironmentCredential"], "not-configured")
        assert.strictEqual(codes["WorkloadIdentityCredential"], "not-configured")
        assert.strictEqual(codes["ManagedIdentityCredential"], "endpoint-unreachable")
        assert.strictEqual(codes["SharedTokenCacheCredential"], "not-signed-in")
        assert.strictEqual(codes["AzureCliCredential"], "tool-missing")
        assert.strictEqual(codes["AzurePowerShellCredential"], "tool-missing")
        assert.strictEqual(codes["AzureDeveloperCliCredential"], "tool-missing")
      }
      const debug = logs.lines.filter((l) => l.startsWith("DEBUG"))
      assert.isTrue(debug.some((l) => l.includes("is unavailable, trying the next link")), debug.join("\n"))
      const noise = logs.lines.filter((l) => l.includes("Fiber terminated"))
      assert.deepStrictEqual(noise, [])
    }).pipe(Effect.provide(layer), Effect.provide(logs.layer), withEnv({ HOME: "/home/dev" }))
  })

  it.effect("a failing single credential logs no defect either", () => {
    const logs = captureLogs()
    const http = mockHttp(() => json(401, { error: "invalid_client", error_codes: [7000215] }))
    const layer = ClientSecretCredential.layer({
      tenantId: "00000000-0000-0000-0000-000000000001",
      clientId: "client",
      clientSecret: Redacted.make("secret-value"),
      authorityHost: "https://login.example.test"
    }).pipe(Layer.provide(http.layer))
    return Effect.gen(function*() {
      yield* setNow
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE))
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(logs.lines.filter((l) => l.includes("Fiber terminated")), [])
    }).pipe(Effect.provide(layer), Effect.provide(logs.layer), withEnv())
  })

  it.effect("a developer tool that is missing, alone, logs no defect either", () => {
    const logs = captureLogs()
    const layer = AzureCliCredential.layer().pipe(
      Layer.provide(Layer.mergeAll(mockExecutor(() => notFound).layer, FileSystem.layerNoop({})))
    )
    return Effect.gen(function*() {
      yield* setNow
      const error = failureOf(yield* Effect.exit(TokenCredential.getToken(SCOPE)))
      assert.strictEqual(error._tag === "CredentialUnavailableError" ? error.code : error._tag, "tool-missing")
      assert.deepStrictEqual(logs.lines.filter((l) => l.includes("Fiber terminated")), [])
    }).pipe(Effect.provide(layer), Effect.provide(logs.layer), withEnv({ HOME: "/home/dev" }))
  })

  it.live("AzureSdk.toTokenCredential: a rejected getToken logs no defect", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const failing = TestCredential.layer({
        outcomes: [new IdentityError.CredentialUnavailableError({ credential: "TestCredential", reason: "scripted" })]
      })
      const sdk = AzureSdk.toTokenCredential(Layer.merge(failing, logs.layer))
      const rejected = yield* Effect.promise(() => sdk.getToken(SCOPE).then(() => "resolved", () => "rejected"))
      yield* Effect.promise(() => sdk.close())
      assert.strictEqual(rejected, "rejected")
      assert.deepStrictEqual(logs.lines.filter((l) => l.includes("Fiber terminated")), [])
    }))

  it.effect("the chain's token names the link that produced it; errors carry a reason code", () => {
    const okHttp = mockHttp(() => json(200, tokenBody("metrics-secret-token")))
    const badHttp = mockHttp(() => reset)
    const secret = (client: string, http: typeof okHttp) =>
      ClientSecretCredential.layer({
        tenantId: "00000000-0000-0000-0000-000000000001",
        clientId: client,
        clientSecret: Redacted.make("secret-value"),
        authorityHost: "https://login.example.test",
        retryPolicy: { maxRetries: 0 }
      }).pipe(Layer.provide(http.layer))
    const chain = ChainedTokenCredential.layerWith(
      { name: "MyChain" },
      ClientSecretCredential.layerConfig().pipe(Layer.provide(badHttp.layer)),
      secret("a", badHttp),
      secret("b", okHttp)
    )
    return Effect.gen(function*() {
      yield* setNow
      const token = yield* TokenCredential.getToken(SCOPE)
      assert.strictEqual(token.credential, "ClientSecretCredential")
      const failing = ChainedTokenCredential.layer(
        ClientSecretCredential.layerConfig().pipe(Layer.provide(badHttp.layer)),
        secret("a", badHttp)
      )
      const error = failureOf(yield* Effect.exit(Effect.provide(TokenCredential.getToken(SCOPE), failing)))
      assert.strictEqual(error._tag, "ChainedAuthenticationError")
      if (error._tag !== "ChainedAuthenticationError") return
      assert.deepStrictEqual(error.errors.map((e) => e.code), ["not-configured", "endpoint-unreachable"])
    }).pipe(Effect.provide(chain), withEnv())
  })

  it.effect("metrics: requests by credential and outcome, latency from Clock, cached tokens; memory hits count nothing", () => {
    const name = "ClientSecretCredential"
    let calls = 0
    const http = mockHttp(() =>
      ++calls === 1
        ? json(400, { error: "invalid_scope", error_codes: [70011] })
        : Effect.as(TestClock.adjust("40 millis"), json(200, tokenBody("metrics-secret-token")))
    )
    const layer = ClientSecretCredential.layer({
      tenantId: "00000000-0000-0000-0000-000000000001",
      clientId: "client",
      clientSecret: Redacted.make("secret-value"),
      authorityHost: "https://login.example.test",
      retryPolicy: { maxRetries: 0 }
    }).pipe(Layer.provide(http.layer))
    const count = (outcome: string) =>
      Effect.map(
        Metric.value(IdentityMetrics.tokenRequests.pipe(
          Metric.tagged("credential", name),
          Metric.tagged("outcome", outcome)
        )),
        (s) => s.count
      )
    const cached = Effect.map(
      Metric.value(Metric.tagged(IdentityMetrics.cachedTokens, "credential", name)),
      (s) => s.value
    )
    return Effect.gen(function*() {
      yield* setNow
      const before = {
        ok: yield* count("success"),
        rejected: yield* count("rejected-by-authority"),
        cached: yield* cached
      }
      const first = yield* Effect.exit(TokenCredential.getToken(SCOPE))
      assert.isTrue(Exit.isFailure(first))
      // the refusal is held (30 s by default) and counts no second request; then a new request succeeds
      assert.isTrue(Exit.isFailure(yield* Effect.exit(TokenCredential.getToken(SCOPE))))
      yield* TestClock.adjust("31 seconds")
      yield* TokenCredential.getToken(SCOPE)
      yield* TokenCredential.getToken(SCOPE) // from memory: no request
      assert.strictEqual((yield* count("success")) - before.ok, 1)
      assert.strictEqual((yield* count("rejected-by-authority")) - before.rejected, 1)
      assert.strictEqual((yield* cached) - before.cached, 1)
      const histogram = yield* Metric.value(Metric.tagged(IdentityMetrics.tokenRequestDuration, "credential", name))
      assert.isAtLeast(histogram.count, 2)
      assert.isAtLeast(histogram.max, 40)
      for (const pair of Metric.unsafeSnapshot()) {
        assert.notInclude(JSON.stringify(pair.metricKey), "metrics-secret-token")
        assert.notInclude(JSON.stringify(pair.metricKey), "vault")
      }
    }).pipe(Effect.provide(layer), withEnv())
  })

  it.effect("spans: every credential names its attributes azure.identity.*, and no span holds the token", () => {
    const { spans, tracer } = recordingTracer()
    const cli = JSON.stringify({ accessToken: "span-secret-token", expires_on: 1_900_000_000, tokenType: "Bearer" })
    const exec = mockExecutor(() => output(cli))
    const layer = ChainedTokenCredential.layer(
      ClientSecretCredential.layerConfig().pipe(Layer.provide(mockHttp(() => reset).layer)),
      AzureCliCredential.layer()
    ).pipe(Layer.provide(Layer.mergeAll(exec.layer, FileSystem.layerNoop({}))))
    return Effect.gen(function*() {
      yield* setNow
      const token = yield* TokenCredential.getToken(SCOPE)
      assert.strictEqual(token.credential, "AzureCliCredential")
      const names = spans.map((s) => s.name)
      assert.includeMembers(names, ["ChainedTokenCredential.getToken", "AzureCliCredential.getToken"])
      for (const name of ["ChainedTokenCredential.getToken", "AzureCliCredential.getToken"]) {
        const span = spans.find((s) => s.name === name)!
        assert.strictEqual(span.attributes.get("azure.identity.scopes"), SCOPE, name)
        assert.isString(span.attributes.get("azure.identity.credential"), name)
        for (const key of span.attributes.keys()) assert.match(key, /^azure\.identity\.|^http\.|^code\./, name)
      }
      for (const span of spans) {
        for (const value of span.attributes.values()) assert.notInclude(String(value), "span-secret-token")
      }
    }).pipe(Effect.provide(layer), Effect.withTracer(tracer), withEnv({ HOME: "/home/dev" }))
  })
})

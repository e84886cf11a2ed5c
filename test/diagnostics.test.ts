import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import {
  ChainedTokenCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  TokenCredential
} from "../src/index.js"
import { captureLogs, failureOf, setNow, withEnv } from "./support/helpers.js"
import { mockExecutor, notFound } from "./support/mockCommand.js"
import { json, mockHttp, reset, tokenBody } from "./support/mockHttp.js"

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

  it.effect("the chain's token names the link that produced it; errors carry a reason code", () => {
    const okHttp = mockHttp(() => json(200, tokenBody("tok")))
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
})

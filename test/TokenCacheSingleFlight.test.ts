/**
 * The cache engine with a backend that coordinates processes (`TokenCache.Service.singleFlight`, as RedisTokenCache
 * does): it is asked only after a miss, once per key for all callers of a process, and its `recheck` reads the
 * backend with the usual acceptance rules.
 */
import { assert, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { type AccessToken, ClientSecretCredential, TokenCache, TokenCredential } from "../src/index.js"
import { setNow, T0, withEnv } from "./support/helpers.js"
import { json, mockHttp, tokenBody } from "./support/mockHttp.js"

const SCOPE = "https://vault.azure.net/.default"

const credentialOver = (service: TokenCache.Service, http: ReturnType<typeof mockHttp>) =>
  Effect.map(
    Layer.build(
      ClientSecretCredential.layer({
        tenantId: "tenant-1",
        clientId: "app-1",
        clientSecret: Redacted.make("secret"),
        authorityHost: "https://login.example.test"
      }).pipe(Layer.provide(http.layer), Layer.provide(Layer.succeed(TokenCache.TokenCache, service)))
    ),
    (ctx) => ctx.unsafeMap.get(TokenCredential.TokenCredential.key) as TokenCredential.Service
  )

const counter = () => {
  let n = 0
  return mockHttp(() => json(200, tokenBody(`tok-${++n}`, 3600)))
}

const token = (value: string, expiresInMillis: number): AccessToken.AccessToken => ({
  token: Redacted.make(value),
  tokenType: "Bearer",
  expiresOn: DateTime.unsafeMake(T0 + expiresInMillis),
  refreshOn: Option.none()
})

describe("TokenCache.Service.singleFlight", () => {
  it.scoped("is asked once per key after a miss, for every caller of the process, and not on a hit", () =>
    Effect.gen(function*() {
      yield* setNow
      const memory = yield* TokenCache.makeMemory
      const asked: Array<string> = []
      const service: TokenCache.Service = {
        ...memory,
        singleFlight: (key, _recheck, fetch) => Effect.zipRight(Effect.sync(() => asked.push(key)), fetch)
      }
      const http = counter()
      const credential = yield* credentialOver(service, http)
      const tokens = yield* Effect.all(Array.from({ length: 50 }, () => credential.getToken(SCOPE)), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(new Set(tokens.map((t) => Redacted.value(t.token))), new Set(["tok-1"]))
      assert.strictEqual(asked.length, 1)
      assert.strictEqual(http.requests.length, 1)
      // a second layer of this "fleet" finds the saved token: no single flight, no request
      const other = yield* credentialOver(service, http)
      assert.strictEqual(Redacted.value((yield* other.getToken(SCOPE)).token), "tok-1")
      assert.strictEqual(asked.length, 1)
      assert.strictEqual(http.requests.length, 1)
    }).pipe(withEnv()))

  it.scoped("a token another process saved while this one waited is taken from recheck, without a request", () =>
    Effect.gen(function*() {
      yield* setNow
      const memory = yield* TokenCache.makeMemory
      const service: TokenCache.Service = {
        ...memory,
        // the "other process" saves its token, then this one reads again instead of fetching
        singleFlight: (key, recheck, fetch) =>
          Effect.zipRight(
            Effect.orDie(memory.save(key, token("peer-token", 3_600_000))),
            Effect.flatMap(recheck, Option.match({ onNone: () => fetch, onSome: Effect.succeed }))
          )
      }
      const http = counter()
      const credential = yield* credentialOver(service, http)
      assert.strictEqual(Redacted.value((yield* credential.getToken(SCOPE)).token), "peer-token")
      assert.strictEqual(http.requests.length, 0)
    }).pipe(withEnv()))

  it.scoped("recheck refuses a token about to expire: the caller's process requests its own", () =>
    Effect.gen(function*() {
      yield* setNow
      const memory = yield* TokenCache.makeMemory
      const service: TokenCache.Service = {
        ...memory,
        singleFlight: (key, recheck, fetch) =>
          Effect.zipRight(
            Effect.orDie(memory.save(key, token("expiring", 10_000))),
            Effect.flatMap(recheck, Option.match({ onNone: () => fetch, onSome: Effect.succeed }))
          )
      }
      const http = counter()
      const credential = yield* credentialOver(service, http)
      assert.strictEqual(Redacted.value((yield* credential.getToken(SCOPE)).token), "tok-1")
      assert.strictEqual(http.requests.length, 1)
    }).pipe(withEnv()))
})

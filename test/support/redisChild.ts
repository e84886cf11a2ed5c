/**
 * A separate process of the Redis fleet tests and benchmark: a ClientSecretCredential against a loopback token
 * server, with the Redis token cache. Talks to its parent over IPC:
 *
 * - sends `{ op: "ready" }` once the layer is built (connected to Redis);
 * - `{ op: "get", scopes, callers, concurrency? }` → `callers` `getToken` per scope, all at once (or `concurrency` at
 *   a time); replies
 *   `{ op: "calling" }` when they start and `{ op: "tokens", tokens }` (one per call, in order);
 * - `{ op: "latency", scopes }` → a new credential layer (empty memory) gets each scope in turn; replies
 *   `{ op: "latency", millis, tokens }`;
 * - `{ op: "metrics" }` → the cache's counters (`RedisTokenCache.redisCalls`, `unsharedRequests`) so far; replies
 *   `{ op: "metrics", counters: { "<metric> <tags>": count } }`.
 *
 * env: REDIS_URL, REDIS_PREFIX, TOKEN_CACHE_KEY (base64), AUTHORITY_HOST, LOCK_TTL_MS, COMMAND_TIMEOUT_MS.
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import { performance } from "node:perf_hooks"
import * as ClientSecretCredential from "../../src/ClientSecretCredential.js"
import * as IdentityNode from "../../src/node.js"
import * as RedisTokenCache from "../../src/RedisTokenCache.js"
import * as TokenCredential from "../../src/TokenCredential.js"

const env = process.env
const cache = RedisTokenCache.layer({
  url: env.REDIS_URL ?? "redis://127.0.0.1:6379",
  prefix: env.REDIS_PREFIX ?? "effect-azure-identity-test:",
  encryptionKey: Redacted.make(env.TOKEN_CACHE_KEY ?? ""),
  lockTtlMillis: Number(env.LOCK_TTL_MS ?? "10000"),
  commandTimeoutMillis: Number(env.COMMAND_TIMEOUT_MS ?? "1000")
})

const credential = () =>
  ClientSecretCredential.layer({
    tenantId: "fleet-tenant",
    clientId: "fleet-app",
    clientSecret: Redacted.make("fleet-secret"),
    authorityHost: env.AUTHORITY_HOST ?? ""
  }).pipe(
    Layer.provide(cache),
    Layer.provide(IdentityNode.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))
  )

type Request =
  | {
    readonly op: "get"
    readonly scopes: ReadonlyArray<string>
    readonly callers: number
    readonly concurrency?: number | undefined
  }
  | { readonly op: "latency"; readonly scopes: ReadonlyArray<string> }
  | { readonly op: "metrics" }

const send = (message: unknown) => process.send?.(message)

const main = async () => {
  const runtime = ManagedRuntime.make(credential())
  await runtime.runtime()
  process.on("disconnect", () => {
    void runtime.dispose().finally(() => process.exit(0))
  })
  process.on("message", (request: Request) => {
    if (request.op === "get") {
      send({ op: "calling" })
      const calls = request.scopes.flatMap((scope) =>
        Array.from({ length: request.callers }, () => TokenCredential.getToken(scope))
      )
      runtime.runPromise(Effect.all(calls, { concurrency: request.concurrency ?? "unbounded" })).then(
        (tokens) => send({ op: "tokens", tokens: tokens.map((t) => Redacted.value(t.token)) }),
        (error) => send({ op: "error", message: String(error) })
      )
    } else if (request.op === "metrics") {
      runtime.runPromise(Metric.snapshot).then(
        (pairs) => {
          const counters: Record<string, number> = {}
          for (const pair of pairs) {
            const name = pair.metricKey.name
            if (!name.startsWith("azure_identity.redis_cache")) continue
            const tags = pair.metricKey.tags.map((t) => `${t.key}=${t.value}`).join(",")
            counters[`${name.replace("azure_identity.redis_cache_", "")} ${tags}`.trim()] =
              (pair.metricState as unknown as { count: number }).count
          }
          send({ op: "metrics", counters })
        },
        (error) => send({ op: "error", message: String(error) })
      )
    } else {
      const fresh = ManagedRuntime.make(credential())
      const run = async () => {
        await fresh.runtime()
        const millis: Array<number> = []
        const tokens: Array<string> = []
        for (const scope of request.scopes) {
          const start = performance.now()
          const token = await fresh.runPromise(TokenCredential.getToken(scope))
          millis.push(performance.now() - start)
          tokens.push(Redacted.value(token.token))
        }
        await fresh.dispose()
        return { millis, tokens }
      }
      run().then(
        ({ millis, tokens }) => send({ op: "latency", millis, tokens }),
        (error) => send({ op: "error", message: String(error) })
      )
    }
  })
  send({ op: "ready" })
}

void main()

/**
 * RedisTokenCache against the real Redis at `REDIS_URL` (default redis://127.0.0.1:6379), under a key prefix of this
 * run, removed at the end. Without a reachable Redis the suite reports itself skipped with the reason, unless
 * `REQUIRE_REDIS` is set (CI): then it runs and fails.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { Redis } from "ioredis"
import { type ChildProcess, fork } from "node:child_process"
import * as crypto from "node:crypto"
import { performance } from "node:perf_hooks"
import type { AccessToken } from "../../src/AccessToken.js"
import * as ClientSecretCredential from "../../src/ClientSecretCredential.js"
import * as IdentityNode from "../../src/node.js"
import * as RedisTokenCache from "../../src/RedisTokenCache.js"
import type * as TokenCache from "../../src/TokenCache.js"
import * as TokenCredential from "../../src/TokenCredential.js"
import { captureLogs, envLayer, guardedNodeArgs, setNow, T0, tokenValue } from "../support/helpers.js"
import { tcpProxy } from "../support/tcpProxy.js"
import { type TokenServer, tokenServer } from "../support/tokenServer.js"

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const REQUIRED = (process.env.REQUIRE_REDIS ?? "") !== ""
const RUN_PREFIX = `effect-azure-identity-test:${crypto.randomUUID()}:`
const KEY = crypto.randomBytes(32).toString("base64")
const SCOPE = "https://vault.azure.net/.default"

/** Whether Redis answers PING within a second, and why not. */
const probe = async (): Promise<string | undefined> => {
  const client = new Redis(REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  client.on("error", () => {})
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 1 s")), 1000))
    ])
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  } finally {
    client.disconnect()
  }
}

const unreachable = await probe()
const skip = unreachable !== undefined && !REQUIRED
const title = skip
  ? `RedisTokenCache against Redis (skipped: no Redis at ${REDIS_URL}: ${unreachable}; set REQUIRE_REDIS=1 to fail)`
  : "RedisTokenCache against Redis"

const admin = skip ? undefined : new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
admin?.on("error", () => {})

afterAll(async () => {
  if (admin === undefined) return
  const keys = await admin.keys(`${RUN_PREFIX}*`)
  if (keys.length > 0) await admin.del(...keys)
  admin.disconnect()
})

/** The Redis keys of token entries under a prefix (not the locks). */
const entryKeys = (prefix: string) =>
  Effect.promise(() => admin!.keys(`${prefix}*`)).pipe(Effect.map((keys) => keys.filter((k) => !k.endsWith(":lock"))))

const credential = (
  server: TokenServer,
  cache: Layer.Layer<TokenCache.TokenCache>,
  clientId = "fleet-app"
) =>
  ClientSecretCredential.layer({
    tenantId: "fleet-tenant",
    clientId,
    clientSecret: Redacted.make("fleet-secret"),
    authorityHost: server.url
  }).pipe(Layer.provide(cache), Layer.provide(IdentityNode.layer))

/** A credential layer built in the current scope: its own memory cache, the given Redis cache. */
const build = (layer: Layer.Layer<TokenCredential.TokenCredential>) =>
  Effect.map(Layer.build(layer), Context.get(TokenCredential.TokenCredential))

const get = (c: TokenCredential.Service, scope = SCOPE) => Effect.map(c.getToken(scope), tokenValue)

// --- child processes ---------------------------------------------------------------------------------------------

interface Child {
  readonly process: ChildProcess
  readonly send: (message: object) => void
  /** The next message with this `op` (an `error` message from the child fails the test). */
  readonly next: (op: string) => Effect.Effect<any>
}

const spawn = (env: Record<string, string>): Effect.Effect<Child, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = fork(new URL("../support/redisChild.ts", import.meta.url).pathname, [], {
        execArgv: [...guardedNodeArgs],
        env: { PATH: process.env.PATH ?? "", ...env },
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      const inbox: Array<{ op: string }> = []
      const waiters = new Set<() => void>()
      child.on("message", (message: { op: string }) => {
        inbox.push(message)
        for (const waiter of [...waiters]) waiter()
      })
      const next = (op: string) =>
        Effect.async<any, Error>((resume) => {
          const check = () => {
            const index = inbox.findIndex((m) => m.op === op || m.op === "error")
            if (index < 0) return
            const [message] = inbox.splice(index, 1)
            waiters.delete(check)
            resume(
              message!.op === "error"
                ? Effect.fail(new Error(`child: ${(message as any).message}`))
                : Effect.succeed(message)
            )
          }
          const onExit = (code: number | null) => {
            waiters.delete(check)
            resume(Effect.fail(new Error(`child exited (${code}) before sending ${op}`)))
          }
          waiters.add(check)
          child.once("exit", onExit)
          check()
          return Effect.sync(() => {
            waiters.delete(check)
            child.off("exit", onExit)
          })
        }).pipe(Effect.orDie)
      return { process: child, send: (message: object) => child.send(message), next }
    }),
    ({ process: child }) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGKILL")
      })
  )

const childEnv = (server: TokenServer, prefix: string, lockTtlMillis = 10_000) => ({
  REDIS_URL,
  REDIS_PREFIX: prefix,
  TOKEN_CACHE_KEY: KEY,
  AUTHORITY_HOST: server.url,
  LOCK_TTL_MS: String(lockTtlMillis)
})

// --- one cache's Redis calls, timed by the TestClock ----------------------------------------------------------------

/** A connected client with the cache's options, closed with the scope. */
const rawClient = Effect.acquireRelease(
  Effect.promise(async () => {
    const c = new Redis(REDIS_URL, RedisTokenCache.clientOptions({ commandTimeoutMillis: 100 }))
    c.on("error", () => {})
    await c.connect()
    return c
  }),
  (c) => Effect.sync(() => c.disconnect())
)

/**
 * `raw` with the replies of some `eval`/`get` calls held back (the command reaches Redis and runs; its answer reaches
 * the cache only on `deliver`): an answer that comes after the bound.
 */
const withHeldReplies = (raw: Redis, hold: (command: "eval" | "get", args: ReadonlyArray<unknown>) => boolean) => {
  const held: Array<() => void> = []
  const client = new Proxy(raw, {
    get(target, property) {
      const value = Reflect.get(target, property, target)
      if (typeof value !== "function") return value
      if (property !== "eval" && property !== "get") return value.bind(target)
      return (...args: Array<unknown>) => {
        const reply: Promise<unknown> = value.apply(target, args)
        if (!hold(property, args)) return reply
        return new Promise((resolve, reject) => held.push(() => reply.then(resolve, reject)))
      }
    }
  })
  return { client, deliver: () => held.splice(0).forEach((f) => f()) }
}
const isLockAttempt = (command: string, args: ReadonlyArray<unknown>) =>
  command === "eval" && String(args[0]).includes(`"set"`)

/** Lets real I/O (Redis replies, pub/sub) happen while the TestClock stands still: one round trip to Redis. */
const roundTrip = Effect.promise(() => admin!.ping())
/** Runs `step` and a round trip until `done` (at most 200 times). */
const until = (done: () => boolean, step: Effect.Effect<void> = Effect.void) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200 && !done(); i++) {
      yield* step
      yield* roundTrip
    }
    assert.isTrue(done(), "the condition was never met")
  })

const counterValue = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (s) => s.count)
const calls = (call: string, outcome: string) =>
  counterValue(
    Metric.tagged(Metric.tagged(RedisTokenCache.redisCalls, "call", call), "outcome", outcome)
  )

const anAccessToken = (value: string): AccessToken => ({
  token: Redacted.make(value),
  tokenType: "Bearer",
  expiresOn: DateTime.unsafeMake(T0 + 3_600_000),
  refreshOn: Option.none()
})

describe.skipIf(skip)(title, () => {
  it.runIf(REQUIRED)("Redis is reachable (REQUIRE_REDIS is set)", () => {
    assert.isUndefined(unreachable, `no Redis at ${REDIS_URL}`)
  })

  it.live(
    "4 processes x 100 concurrent cold callers → exactly 1 token request, the same token everywhere",
    () =>
      Effect.gen(function*() {
        const prefix = `${RUN_PREFIX}fleet:`
        // the first request waits until every process has started its callers, so they all meet a cold cache
        let answerFirst: () => void = () => {}
        const server = yield* tokenServer({
          hold: (n) => n === 1,
          onHeld: (_, answer) => {
            answerFirst = answer
          }
        })
        const children = yield* Effect.all(Array.from({ length: 4 }, () => spawn(childEnv(server, prefix))), {
          concurrency: "unbounded"
        })
        yield* Effect.forEach(children, (c) => c.next("ready"), { concurrency: "unbounded" })
        for (const c of children) c.send({ op: "get", scopes: [SCOPE], callers: 100 })
        yield* Effect.forEach(children, (c) => c.next("calling"), { concurrency: "unbounded" })
        yield* server.waitForRequests(1)
        answerFirst()
        const results = yield* Effect.forEach(children, (c) => c.next("tokens"), { concurrency: "unbounded" })
        assert.strictEqual(server.count(), 1)
        for (const { tokens } of results) {
          assert.strictEqual(tokens.length, 100)
          assert.deepStrictEqual(new Set(tokens), new Set(["fleet-token-1"]))
        }
        assert.lengthOf(yield* entryKeys(prefix), 1)
      }).pipe(Effect.scoped),
    120_000
  )

  it.scoped(
    "a lock attempt answered after its bound took the lock: the retry finds it ours, one request as holder",
    () =>
      Effect.gen(function*() {
        yield* setNow
        const prefix = `${RUN_PREFIX}late-own-lock:`
        const encryptionKey = Redacted.make(KEY)
        let attempts = 0
        const held = withHeldReplies(
          yield* rawClient,
          (command, args) => isLockAttempt(command, args) && ++attempts === 1
        )
        const cache = yield* RedisTokenCache.make({ client: held.client, prefix, encryptionKey })
        const unsharedBefore = yield* counterValue(RedisTokenCache.unsharedRequests)
        const timeoutsBefore = yield* calls("lock", "timeout")
        let requests = 0
        const fetch = Effect.gen(function*() {
          requests++
          const token = anAccessToken("from-the-holder")
          yield* cache.save("late-own-lock", token)
          return token
        })
        const recheck = Effect.orElseSucceed(cache.load("late-own-lock"), Option.none)
        const fiber = yield* Effect.fork(cache.singleFlight!("late-own-lock", recheck, fetch))
        yield* until(() => attempts === 1)
        // the first attempt's answer does not come within the bound: no answer at all from Redis meanwhile
        yield* TestClock.adjust(100)
        yield* until(() => attempts === 2)
        // no clock time passes from here: no call (the lock's release included) waits out its bound once answered
        const token = yield* Fiber.join(fiber).pipe(
          Effect.raceFirst(until(() => false).pipe(Effect.zipRight(Effect.never)))
        )
        held.deliver()
        assert.strictEqual(tokenValue(token), "from-the-holder")
        assert.strictEqual(requests, 1)
        assert.strictEqual((yield* calls("lock", "timeout")) - timeoutsBefore, 1)
        assert.strictEqual((yield* counterValue(RedisTokenCache.unsharedRequests)) - unsharedBefore, 0)
        // the holder released its lock
        const keys = yield* Effect.promise(() => admin!.keys(`${prefix}*`))
        assert.deepStrictEqual(keys.filter((k) => k.endsWith(":lock")), [])
      }),
    30_000
  )

  it.scoped(
    "a waiter whose lock attempt gets no answer in time keeps waiting: one token request for both",
    () =>
      Effect.gen(function*() {
        yield* setNow
        const prefix = `${RUN_PREFIX}late-waiter:`
        const encryptionKey = Redacted.make(KEY)
        const holder = yield* RedisTokenCache.make({ client: yield* rawClient, prefix, encryptionKey })
        let attempts = 0
        // the waiter's second lock attempt (after one wait) gets its answer too late
        const held = withHeldReplies(
          yield* rawClient,
          (command, args) => isLockAttempt(command, args) && ++attempts === 2
        )
        const waiter = yield* RedisTokenCache.make({ client: held.client, prefix, encryptionKey })
        const unsharedBefore = yield* counterValue(RedisTokenCache.unsharedRequests)
        const timeoutsBefore = yield* calls("lock", "timeout")
        const gate = yield* Deferred.make<void>()
        const requests: Array<string> = []
        const fetchOf = (who: string, cache: typeof holder) =>
          Effect.gen(function*() {
            requests.push(who)
            if (who === "holder") yield* Deferred.await(gate)
            const token = anAccessToken(`from-the-${who}`)
            yield* cache.save("late-waiter", token)
            return token
          })
        const recheckOf = (cache: typeof holder) => Effect.orElseSucceed(cache.load("late-waiter"), Option.none)
        const first = yield* Effect.fork(
          holder.singleFlight!("late-waiter", recheckOf(holder), fetchOf("holder", holder))
        )
        yield* until(() => requests.length === 1) // the holder has the lock and its request is under way
        const second = yield* Effect.fork(
          waiter.singleFlight!("late-waiter", recheckOf(waiter), fetchOf("waiter", waiter))
        )
        yield* until(() => attempts === 2, TestClock.adjust(25)) // it found the lock held, waited, and tries again
        yield* TestClock.adjust(100) // that attempt's answer does not come within the bound
        yield* until(() => attempts === 3)
        yield* Deferred.succeed(gate, undefined)
        const tokens = yield* Effect.all([Fiber.join(first), Fiber.join(second)]).pipe(
          Effect.raceFirst(until(() => false, TestClock.adjust(100)).pipe(Effect.zipRight(Effect.never)))
        )
        held.deliver()
        assert.deepStrictEqual(tokens.map(tokenValue), ["from-the-holder", "from-the-holder"])
        assert.deepStrictEqual(requests, ["holder"])
        assert.strictEqual((yield* calls("lock", "timeout")) - timeoutsBefore, 1)
        assert.strictEqual((yield* counterValue(RedisTokenCache.unsharedRequests)) - unsharedBefore, 0)
      }),
    30_000
  )

  it.scoped(
    "an answer after the bound counts while Redis answers other calls; none at all for a bound → a miss",
    () =>
      Effect.gen(function*() {
        yield* setNow
        const prefix = `${RUN_PREFIX}late-read:`
        const encryptionKey = Redacted.make(KEY)
        const writer = yield* RedisTokenCache.make({ client: yield* rawClient, prefix, encryptionKey })
        yield* writer.save("slow", anAccessToken("slow-token"))
        let reads = 0
        // the reads of "slow" (the first and third) get their answers only on `deliver`
        const held = withHeldReplies(yield* rawClient, (command) => command === "get" && [1, 3].includes(++reads))
        const cache = yield* RedisTokenCache.make({ client: held.client, prefix, encryptionKey })
        const lateBefore = yield* calls("read", "late")

        const slow = yield* Effect.fork(cache.load("slow"))
        yield* until(() => reads === 1)
        // another call is answered meanwhile: Redis works, this process is just late reading the first answer
        assert.isTrue(Option.isNone(yield* cache.load("other")))
        yield* TestClock.adjust(100)
        yield* roundTrip
        held.deliver()
        const loaded = yield* Fiber.join(slow)
        assert.strictEqual(Option.map(loaded, tokenValue).pipe(Option.getOrNull), "slow-token")
        assert.strictEqual((yield* calls("read", "late")) - lateBefore, 1)

        // no answer from Redis at all for a whole bound: the read gives up, a miss
        const gone = yield* Effect.fork(cache.load("slow"))
        yield* until(() => reads === 3)
        yield* TestClock.adjust(100)
        assert.isTrue(Option.isNone(yield* Fiber.join(gone)))
        held.deliver()
      }),
    30_000
  )

  it.live(
    "the lock holder is killed mid-request → another process gets the token within the lock's TTL",
    () =>
      Effect.gen(function*() {
        const prefix = `${RUN_PREFIX}kill:`
        const lockTtl = 1500
        const server = yield* tokenServer({ hold: (n) => n === 1 })
        const holder = yield* spawn(childEnv(server, prefix, lockTtl))
        yield* holder.next("ready")
        holder.send({ op: "get", scopes: [SCOPE], callers: 10 })
        yield* server.waitForRequests(1) // the holder took the lock and its request hangs
        const waiter = yield* spawn(childEnv(server, prefix, lockTtl))
        yield* waiter.next("ready")
        waiter.send({ op: "get", scopes: [SCOPE], callers: 10 })
        yield* waiter.next("calling")
        assert.strictEqual(server.count(), 1)
        const killedAt = performance.now()
        holder.process.kill("SIGKILL")
        const { tokens } = yield* waiter.next("tokens")
        const elapsed = performance.now() - killedAt
        assert.deepStrictEqual(new Set(tokens), new Set(["fleet-token-2"]))
        assert.strictEqual(server.count(), 2)
        // the lock outlives its holder by at most its TTL (plus a poll and a request on a loaded machine)
        assert.isBelow(elapsed, lockTtl + 1500)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "Redis slow or gone mid-run: every getToken succeeds, one warning (not per call); back → shared again",
    () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const prefix = `${RUN_PREFIX}outage:`
        const url = new URL(REDIS_URL)
        const proxy = yield* tcpProxy({ host: url.hostname, port: Number(url.port || "6379") })
        const client = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const proxied = new URL(REDIS_URL)
            proxied.hostname = "127.0.0.1"
            proxied.port = String(proxy.port)
            const c = new Redis(proxied.toString(), RedisTokenCache.clientOptions({ commandTimeoutMillis: 200 }))
            c.on("error", () => {})
            await c.connect()
            return c
          }),
          (c) => Effect.sync(() => c.disconnect())
        )
        const server = yield* tokenServer()
        const options = { prefix, encryptionKey: Redacted.make(KEY), commandTimeoutMillis: 200 }
        const viaProxy = yield* build(credential(server, RedisTokenCache.layer({ ...options, client })))
        const direct = () => build(credential(server, RedisTokenCache.layer({ ...options, url: REDIS_URL })))
        const warnings = () =>
          logs.lines.filter((l) => l.startsWith("WARN") && l.includes("Redis is unavailable")).length

        // shared: the direct process reads what the proxied one stored
        assert.strictEqual(yield* get(viaProxy, "scope-1"), "fleet-token-1")
        assert.strictEqual(yield* get(yield* direct(), "scope-1"), "fleet-token-1")
        assert.strictEqual(server.count(), 1)

        // slow: Redis does not answer; each call gives up after 200 ms and the token is requested here
        yield* proxy.pause
        const slowStart = performance.now()
        const slow = yield* Effect.all(Array.from({ length: 20 }, () => get(viaProxy, "scope-2")), {
          concurrency: "unbounded"
        })
        assert.isBelow(performance.now() - slowStart, 3000)
        assert.deepStrictEqual(new Set(slow), new Set(["fleet-token-2"]))
        assert.strictEqual(yield* get(viaProxy, "scope-3"), "fleet-token-3")
        assert.strictEqual(warnings(), 1)
        yield* proxy.resume
        // Redis answers again: the proxied process reads what another one shared
        assert.strictEqual(yield* get(yield* direct(), "scope-r"), "fleet-token-4")
        assert.strictEqual(yield* get(viaProxy, "scope-r"), "fleet-token-4")
        assert.strictEqual(server.count(), 4)
        assert.isTrue(logs.lines.some((l) => l.includes("Redis is available again")))

        // gone: connections cut and refused
        const readyAgain = new Promise<void>((resolve) => client.once("ready", () => resolve()))
        yield* proxy.close
        const gone = yield* Effect.all(
          [get(viaProxy, "scope-4"), get(viaProxy, "scope-4"), get(viaProxy, "scope-5"), get(viaProxy, "scope-1")],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(gone[0], gone[1]) // callers in one process still share one request
        assert.deepStrictEqual(new Set([gone[0], gone[2]]), new Set(["fleet-token-5", "fleet-token-6"]))
        assert.strictEqual(gone[3], "fleet-token-1") // from memory
        assert.strictEqual(server.count(), 6)
        // one warning for both outages: not one per call, nor one per outage within a minute
        assert.strictEqual(warnings(), 1)
        assert.isTrue(logs.lines.some((l) => l.startsWith("DEBUG") && l.includes("Redis is unavailable")))

        // back: the client reconnects by itself, and tokens are shared again
        yield* proxy.open
        yield* Effect.promise(() => readyAgain)
        const shared = yield* get(viaProxy, "scope-6")
        assert.strictEqual(shared, "fleet-token-7")
        assert.strictEqual(yield* get(yield* direct(), "scope-6"), shared)
        assert.strictEqual(server.count(), 7)
        assert.strictEqual(warnings(), 1)
      }).pipe(Effect.scoped, Effect.provide(logs.layer), Effect.provide(envLayer()))
    },
    60_000
  )

  it.live("a tampered or foreign entry is a miss, never a wrong token", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer()
      const cache = (prefix: string, key = KEY) =>
        RedisTokenCache.layer({ prefix, encryptionKey: Redacted.make(key), url: REDIS_URL })

      // written with another encryption key
      const p1 = `${RUN_PREFIX}wrong-key:`
      const first = yield* get(yield* build(credential(server, cache(p1))))
      const otherKey = crypto.randomBytes(32).toString("base64")
      const second = yield* get(yield* build(credential(server, cache(p1, otherKey))))
      assert.notStrictEqual(second, first)
      assert.strictEqual(server.count(), 2)

      // one flipped byte in the ciphertext, the tag, or not an entry at all
      const p2 = `${RUN_PREFIX}tampered:`
      const original = yield* get(yield* build(credential(server, cache(p2))))
      const [key] = yield* entryKeys(p2)
      const text = (yield* Effect.promise(() => admin!.get(key!)))!
      for (const field of ["data", "tag", "iv"] as const) {
        const envelope = JSON.parse(text)
        const bytes = Buffer.from(envelope[field], "base64")
        bytes[0] = bytes[0]! ^ 1
        envelope[field] = bytes.toString("base64")
        yield* Effect.promise(() => admin!.set(key!, JSON.stringify(envelope), "PX", 60_000))
        const before = server.count()
        const token = yield* get(yield* build(credential(server, cache(p2))))
        assert.notStrictEqual(token, original)
        assert.strictEqual(token, `fleet-token-${before + 1}`)
      }
      yield* Effect.promise(() => admin!.set(key!, "not an entry", "PX", 60_000))
      const before = server.count()
      assert.strictEqual(yield* get(yield* build(credential(server, cache(p2)))), `fleet-token-${before + 1}`)

      // another credential's entry copied under this credential's key
      const p3 = `${RUN_PREFIX}foreign:`
      const tokenX = yield* get(yield* build(credential(server, cache(p3), "app-x")))
      const [keyX] = yield* entryKeys(p3)
      const tokenY = yield* get(yield* build(credential(server, cache(p3), "app-y")))
      const keyY = (yield* entryKeys(p3)).find((k) => k !== keyX)!
      yield* Effect.promise(async () => admin!.set(keyY, (await admin!.get(keyX!))!, "PX", 60_000))
      const countY = server.count()
      const againY = yield* get(yield* build(credential(server, cache(p3), "app-y")))
      assert.notStrictEqual(againY, tokenX)
      assert.notStrictEqual(againY, tokenY)
      assert.strictEqual(againY, `fleet-token-${countY + 1}`)
    }).pipe(Effect.scoped, Effect.provide(envLayer())), 60_000)

  it.live(
    "without an encryption key the cache refuses to work: CredentialUnavailableError, no request",
    () =>
      Effect.gen(function*() {
        const server = yield* tokenServer()
        const c = yield* build(credential(server, RedisTokenCache.layer({ url: REDIS_URL, prefix: RUN_PREFIX })))
        const error = yield* Effect.flip(c.getToken(SCOPE))
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "encryptionKey")
        assert.strictEqual(server.count(), 0)
        const fromConfig = yield* build(credential(server, RedisTokenCache.layerConfig()))
        const configError = yield* Effect.flip(fromConfig.getToken(SCOPE))
        assert.include(configError.message, "TOKEN_CACHE_KEY")
        assert.strictEqual(server.count(), 0)
      }).pipe(Effect.scoped, Effect.provide(envLayer())),
    30_000
  )
})

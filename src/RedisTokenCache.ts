/**
 * A `TokenCache` on Redis, shared by every process of a fleet: one token request per credential and scope for the
 * whole fleet instead of one per process.
 *
 * - Entries are encrypted as the file store's are (AES-256-GCM, a random IV per write, the cache key as additional
 *   data), under `prefix` + SHA-256 of the cache key (credential, authority, client id, tenant, scopes, CAE), and
 *   expire with the token (`PX`).
 * - Cross-process single flight: after a miss, one process takes a lock (a script: `SET lock owner PX lockTtl` when
 *   free, or already this owner's; kept alive while its request runs, released only by its owner), requests the token, saves it and announces it on a pub/sub
 *   channel; the others wait for that message or read Redis again after a delay on the `Clock` (from
 *   `pollIntervalMillis`, doubling up to 500 ms), and take the lock over when its holder died and it expired.
 *   In a process, callers of one key already share one request, so one process per key talks to Redis.
 * - Redis down, slow or refusing never fails `getToken`: each call is bounded. It gives up when Redis sent the
 *   process no answer at all for `commandTimeoutMillis` (100 ms; replies already in the socket are read first), or
 *   after 10 × `commandTimeoutMillis` while Redis keeps answering its other calls (a busy host, not a Redis that is
 *   gone). A failed read is a miss; a lock attempt that fails is tried once more (the first may have taken the lock)
 *   before the process requests its own token. One warning is logged when Redis becomes unavailable (at most one a
 *   minute) and one message when it is back (the client reconnects by itself). Counters: `redisCalls`,
 *   `unsharedRequests`.
 *
 * Needs the optional peer dependency `ioredis` (5.x). Not exported from the package root: import
 * `effect-azure-identity/RedisTokenCache`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ClientSecretCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 * import * as RedisTokenCache from "effect-azure-identity/RedisTokenCache"
 *
 * // reads TOKEN_CACHE_REDIS_URL and TOKEN_CACHE_KEY
 * const Credential = ClientSecretCredential.layerConfig().pipe(
 *   Layer.provide(RedisTokenCache.layerConfig()),
 *   Layer.provide(IdentityNode.layer)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import type { RedisOptions } from "ioredis"
import * as crypto from "node:crypto"
import type { AccessToken } from "./AccessToken.js"
import * as store from "./internal/tokenStore.js"
import { TokenCache, TokenCacheError } from "./TokenCache.js"
import type * as TokenCacheModule from "./TokenCache.js"

/**
 * The options of `make` and `layer`: the Redis connection (`url`, or your own ioredis `client`), the `encryptionKey`
 * (or `allowUnencrypted: true`, one of which is required), the key prefix, timeouts, and the lock that makes one
 * process of the fleet refresh a token.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The server, e.g. `redis://user:password@host:6379/0` or `rediss://…` for TLS (default `redis://127.0.0.1:6379`).
   * Ignored when `client` is given.
   */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /**
   * A client of your own instead of `url` (the layer does not close it). Give it `clientOptions()` so that no command
   * waits for a connection that is down.
   */
  readonly client?: Redis | undefined
  /**
   * A 256-bit key (64 hex digits, or base64) encrypting every entry with AES-256-GCM; the same key on every process
   * of the fleet. Entries written with another key are misses.
   */
  readonly encryptionKey?: Redacted.Redacted<string> | Redacted.Redacted<Uint8Array> | undefined
  /** Store tokens in plaintext when no `encryptionKey` is given: only for a Redis as protected as a secret. */
  readonly allowUnencrypted?: boolean | undefined
  /** Prefix of every Redis key (default `"effect-azure-identity:"`). */
  readonly prefix?: string | undefined
  /**
   * Bound of each Redis call (default 100 ms): a call fails (a miss, or a request of the process's own) when Redis
   * sent this process no answer at all for this long; while Redis keeps answering the process's other calls (a busy
   * host, a long queue), a call waits for its answer up to 10 times this long.
   */
  readonly commandTimeoutMillis?: number | undefined
  /** How long the layer waits for the first connection while it is built; it works without one (default 1 s). */
  readonly connectTimeoutMillis?: number | undefined
  /** Life of the request lock: how long others wait for a holder that died (default 10 s; kept alive while alive). */
  readonly lockTtlMillis?: number | undefined
  /**
   * How long a process waiting for another's request waits at first before reading Redis again, when no message
   * announced the token; the wait doubles up to 500 ms (default 25 ms).
   */
  readonly pollIntervalMillis?: number | undefined
}

/**
 * The `ioredis` options this cache relies on: no offline queue (a command fails at once while disconnected instead
 * of waiting), one retry per command, a command timeout, and reconnection with a delay growing to 1 s.
 *
 * @since 0.1.0
 * @category constructors
 */
export const clientOptions = (options: { readonly commandTimeoutMillis?: number | undefined } = {}): RedisOptions => {
  const timeout = options.commandTimeoutMillis ?? 100
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // A backstop only, to drop commands Redis never answers: the cache gives up on a call itself (see
    // `Options.commandTimeoutMillis`). Short, it would reject replies that arrived but were not read yet by an event
    // loop blocked for a while (its timer runs before the socket is read).
    commandTimeout: Math.max(30_000, timeout * maxWindows),
    connectTimeout: Math.max(1000, timeout),
    retryStrategy: (times) => Math.min(times * 50, 1000)
  }
}

/** The longest a call waits, in bounds (`commandTimeoutMillis`), while Redis keeps answering this process. */
const maxWindows = 10

/**
 * Redis calls of the cache, tagged `call` (`read`, `write`, `lock`, `unlock`, `extend`, `announce`, `connect`) and
 * `outcome`: `ok` (answered within `commandTimeoutMillis`), `late` (answered later, while Redis kept answering this
 * process's other calls: the process or the queue was slow, not Redis), `timeout` (no answer from Redis at all for
 * `commandTimeoutMillis`, or none after 10 bounds) or `error` (refused, disconnected). Never a key nor a token.
 *
 * @since 0.1.0
 * @category metrics
 */
export const redisCalls: Metric.Metric.Counter<number> = Metric.counter("azure_identity.redis_cache_calls", {
  description: "Redis calls of effect-azure-identity's RedisTokenCache, by call and outcome",
  incremental: true
})

/**
 * Token requests a process sent on its own because Redis could not coordinate (its lock attempt failed twice): each
 * is a request another process may have sent too.
 *
 * @since 0.1.0
 * @category metrics
 */
export const unsharedRequests: Metric.Metric.Counter<number> = Metric.counter(
  "azure_identity.redis_cache_unshared_requests",
  {
    description: "Token requests sent without the fleet's lock because Redis could not coordinate",
    incremental: true
  }
)

// Takes the lock, or finds it already ours (an earlier attempt whose answer came too late took it): 1, else 0.
const acquireScript = `local v = redis.call("get", KEYS[1])
if not v then redis.call("set", KEYS[1], ARGV[1], "PX", ARGV[2]) return 1 end
if v == ARGV[1] then return 1 end
return 0`
// Deletes the lock only while it is still ours: a holder that was too slow never removes its successor's lock.
const releaseScript =
  `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`
// Keeps the lock alive while its holder's request runs.
const extendScript =
  `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`

const refusedService = (reason: string): TokenCacheModule.Service => {
  const error = new TokenCacheError({ reason })
  return { load: () => Effect.fail(error), save: () => Effect.fail(error) }
}

/**
 * The cache service over Redis. The client (from `url`) is closed with the scope. Without `encryptionKey` or
 * `allowUnencrypted` (or with a key of the wrong size), `load` and `save` fail with `TokenCacheError`, which
 * credentials report as `CredentialUnavailableError` before any request.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<TokenCacheModule.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const mode = store.modeOf(options)
    if (mode._tag === "refused") return refusedService(mode.reason)
    const prefix = options.prefix ?? "effect-azure-identity:"
    const timeout = options.commandTimeoutMillis ?? 100
    const lockTtl = Math.max(100, Math.round(options.lockTtlMillis ?? 10_000))
    const firstPoll = Math.max(1, options.pollIntervalMillis ?? 25)
    const maxPoll = Math.max(firstPoll, 500)
    const client = options.client ?? (yield* Effect.acquireRelease(
      Effect.sync(() => {
        const url = options.url === undefined
          ? "redis://127.0.0.1:6379"
          : Redacted.isRedacted(options.url)
          ? Redacted.value(options.url)
          : options.url
        const redis = new Redis(url, clientOptions({ commandTimeoutMillis: timeout }))
        // failures are reported once by `call` below, not by ioredis on the console
        redis.on("error", () => {})
        return redis
      }),
      (redis) =>
        Effect.tryPromise(() => redis.quit()).pipe(
          Effect.timeout(Duration.millis(Math.max(timeout, 100))),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => redis.disconnect()))
        )
    ))

    let available = true
    let warnedAt = Number.NEGATIVE_INFINITY
    let warned = false
    /** Answers (or error replies) Redis sent this process: a call keeps waiting while this grows. */
    let answers = 0
    /** One turn of the event loop's I/O: replies already in the socket are read before a bound is declared over. */
    const ioTurn = Effect.async<void>((resume) => {
      const handle = setImmediate(() => resume(Effect.void))
      return Effect.sync(() => clearImmediate(handle))
    })
    const outcome = (what: string, result: "ok" | "late" | "timeout" | "error") =>
      Metric.increment(Metric.tagged(Metric.tagged(redisCalls, "call", what), "outcome", result))
    /**
     * One Redis call, bounded; `None` when it failed. It fails when Redis sent this process no answer at all (to it or
     * to any other call) for `bound` ms, or after `maxWindows` bounds in any case: on a busy host, replies queued
     * behind others or read late by a starved event loop are slow answers, not a Redis that is gone. An outage is
     * logged once, as a warning at most once a minute (a Redis that flaps does not flood the log).
     */
    const call = <A>(
      what: string,
      f: () => Promise<A>,
      bound = timeout,
      windows = maxWindows
    ): Effect.Effect<Option.Option<A>> =>
      Effect.suspend(() => {
        let result: Either.Either<A, Error> | undefined
        let wake: (() => void) | undefined
        const settle = (r: Either.Either<A, Error>) => {
          answers++
          result = r
          wake?.()
        }
        try {
          f().then(
            (value) => settle(Either.right(value)),
            (e) => settle(Either.left(e instanceof Error ? e : new Error(String(e))))
          )
        } catch (e) {
          settle(Either.left(e instanceof Error ? e : new Error(String(e))))
        }
        const settled = Effect.async<void>((resume) => {
          if (result !== undefined) return resume(Effect.void)
          wake = () => resume(Effect.void)
          return Effect.sync(() => {
            wake = undefined
          })
        })
        const wait = (window: number, seen: number): Effect.Effect<Either.Either<A, Error>> =>
          Effect.flatMap(
            // `interruptible`: in a finalizer (the lock's release) the loser would otherwise run to its end
            Effect.raceFirst(
              Effect.interruptible(settled),
              Effect.interruptible(Effect.zipRight(Effect.sleep(Duration.millis(bound)), ioTurn))
            ),
            () => {
              if (result !== undefined) {
                const kind = Either.isRight(result)
                  ? window === 1 ? "ok" : "late"
                  : result.left.message === "Command timed out"
                  ? "timeout"
                  : "error"
                return Effect.as(outcome(what, kind), result)
              }
              if (answers > seen && window < windows) return wait(window + 1, answers)
              return Effect.as(
                outcome(what, "timeout"),
                Either.left(new Error(`no answer within ${bound * window} ms`))
              )
            }
          )
        return wait(1, answers)
      }).pipe(
        Effect.flatMap(Either.match({
          onRight: (value) => {
            if (available) return Effect.succeed(Option.some(value))
            available = true
            const message = "RedisTokenCache: Redis is available again; sharing tokens again"
            return Effect.as(warned ? Effect.logInfo(message) : Effect.logDebug(message), Option.some(value))
          },
          onLeft: (error) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) => {
              if (!available) return Effect.succeedNone
              available = false
              warned = now - warnedAt >= 60_000
              if (warned) warnedAt = now
              const message = `RedisTokenCache: Redis is unavailable (${what}: ${error.message}); credentials keep ` +
                `their tokens in memory and request their own until it is back`
              return Effect.as(warned ? Effect.logWarning(message) : Effect.logDebug(message), Option.none())
            })
        }))
      )

    if (options.client === undefined) {
      yield* call("connect", () => client.connect(), options.connectTimeoutMillis ?? 1000, 1)
    }

    // Saved tokens are announced on a channel (the store key, which reveals nothing), so waiters wake at once.
    const channel = `${prefix}saved`
    const listeners = new Map<string, Set<() => void>>()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const subscriber = client.duplicate({ lazyConnect: true })
        subscriber.on("error", () => {})
        subscriber.on("ready", () => {
          subscriber.subscribe(channel).catch(() => {})
        })
        subscriber.on("message", (_: string, storeKey: string) => {
          for (const listener of listeners.get(storeKey) ?? []) listener()
        })
        subscriber.connect().catch(() => {})
        return subscriber
      }),
      (subscriber) => Effect.sync(() => subscriber.disconnect())
    )
    /** Completes when the token under `storeKey` is announced. */
    const announced = (storeKey: string) =>
      Effect.async<void>((resume) => {
        const listener = () => resume(Effect.void)
        const set = listeners.get(storeKey) ?? new Set()
        set.add(listener)
        listeners.set(storeKey, set)
        return Effect.sync(() => {
          set.delete(listener)
          if (set.size === 0) listeners.delete(storeKey)
        })
      })

    const load = (key: string): Effect.Effect<Option.Option<AccessToken>> =>
      Effect.flatMap(
        call("read", () => client.get(store.storeKey(prefix, key))),
        (text) => Option.isSome(text) && text.value !== null ? store.parse(mode, key, text.value) : Effect.succeedNone
      )

    const save = (key: string, token: AccessToken): Effect.Effect<void> =>
      Effect.flatMap(DateTime.now, (now) => {
        const ttl = DateTime.toEpochMillis(token.expiresOn) - DateTime.toEpochMillis(now)
        if (ttl <= 0) return Effect.void
        const text = store.encode(mode, key, token)
        return Effect.asVoid(call("write", () => client.set(store.storeKey(prefix, key), text, "PX", ttl)))
      })

    const layerScope = yield* Effect.scope
    const lockKey = (key: string) => `${store.storeKey(prefix, key)}:lock`

    const singleFlight = <E>(
      key: string,
      recheck: Effect.Effect<Option.Option<AccessToken>>,
      fetch: Effect.Effect<AccessToken, E>
    ): Effect.Effect<AccessToken, E> => {
      const lock = lockKey(key)
      const entryKey = store.storeKey(prefix, key)
      const announce = call("announce", () => client.publish(channel, entryKey))
      // unique across processes: `Random` is seeded alike in every process, a lock owner must not be
      const owner = crypto.randomUUID()
      const release = Effect.asVoid(call("unlock", () => client.eval(releaseScript, 1, lock, owner)))
      const keepAlive = Effect.repeat(
        call("extend", () => client.eval(extendScript, 1, lock, owner, lockTtl)),
        { schedule: Schedule.spaced(Duration.millis(Math.max(1, Math.floor(lockTtl / 3)))) }
      )
      const asHolder: Effect.Effect<AccessToken, E> = Effect.flatMap(
        recheck,
        Option.match({
          // another process saved it between our read and our lock
          onSome: (token) => Effect.as(release, token),
          onNone: () =>
            Effect.acquireUseRelease(
              // `interruptible`: forked in the uninterruptible acquire, it would inherit that and never stop
              Effect.fork(Effect.interruptible(Effect.delay(keepAlive, Duration.millis(Math.floor(lockTtl / 3))))),
              () => Effect.tap(fetch, () => announce),
              (fiber) => Effect.zipRight(Fiber.interrupt(fiber), release)
            )
        })
      )
      const acquire = call("lock", () => client.eval(acquireScript, 1, lock, owner, lockTtl))
      // A failed attempt may still have taken the lock (its answer lost or too late): the second one then finds it
      // ours. Only when both fail does the process request the token without the lock (and frees the lock, should
      // one of them have taken it, in the background).
      const tryLock = Effect.flatMap(acquire, (result) => Option.isSome(result) ? Effect.succeed(result) : acquire)
      const unshared = Effect.zipRight(
        Metric.increment(unsharedRequests),
        Effect.ensuring(fetch, Effect.forkIn(release, layerScope))
      )
      const attempt = (delay: number): Effect.Effect<AccessToken, E> =>
        Effect.flatMap(tryLock, (acquired) => {
          // Redis cannot coordinate: request the token here
          if (Option.isNone(acquired)) return unshared
          if (acquired.value === 1) return asHolder
          // another process holds the lock: wait for its announcement (or a while), then look again
          return Effect.flatMap(
            Effect.zipRight(Effect.raceFirst(announced(entryKey), Effect.sleep(Duration.millis(delay))), recheck),
            Option.match({ onSome: Effect.succeed, onNone: () => attempt(Math.min(delay * 2, maxPoll)) })
          )
        })
      return Effect.suspend(() => attempt(firstPoll))
    }

    return { load, save, singleFlight }
  })

/**
 * Keeps tokens in Redis for every process of a fleet. See `make`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<TokenCacheModule.TokenCache> =>
  Layer.scoped(TokenCache, make(options))

/**
 * `layer` with its options from `Config`; by default the URL from `TOKEN_CACHE_REDIS_URL` (a secret: it may carry a
 * password; default `redis://127.0.0.1:6379`) and the encryption key from `TOKEN_CACHE_KEY`. A configuration error
 * makes a cache that refuses to work: credentials then report `CredentialUnavailableError` naming it, and the layer
 * itself never fails.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Omit<Options, "client">> = {
    url: Config.redacted("TOKEN_CACHE_REDIS_URL").pipe(Config.withDefault(Redacted.make("redis://127.0.0.1:6379"))),
    encryptionKey: Config.redacted("TOKEN_CACHE_KEY")
  }
): Layer.Layer<TokenCacheModule.TokenCache> =>
  Layer.scoped(
    TokenCache,
    Effect.matchEffect(Config.unwrap(config), {
      onFailure: (error) => Effect.succeed(refusedService(`its configuration is invalid: ${String(error)}`)),
      onSuccess: make
    })
  )

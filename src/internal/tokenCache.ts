import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { AccessToken } from "../AccessToken.js"
import { defaultRefreshMarginMillis } from "../AccessToken.js"
import { CredentialUnavailableError } from "../IdentityError.js"
import type * as TokenCache from "../TokenCache.js"
import * as CacheMetrics from "./metrics.js"

/** @internal */
export type Decision = "fresh" | "refresh" | "expired"

/** @internal */
export const mustRefreshMarginMillis = 30_000

/** @internal */
export const backgroundRetryMillis = 30_000

/** @internal */
export const refreshOnMillis = (token: AccessToken): number => {
  const expires = DateTime.toEpochMillis(token.expiresOn)
  return Option.isSome(token.refreshOn)
    ? Math.min(DateTime.toEpochMillis(token.refreshOn.value), expires)
    : expires - defaultRefreshMarginMillis
}

/** @internal */
export const decide = (nowMillis: number, refreshOn: number, expiresOn: number): Decision => {
  const mustRefreshAt = expiresOn - mustRefreshMarginMillis
  if (nowMillis >= mustRefreshAt) return "expired"
  if (nowMillis >= refreshOn) return "refresh"
  return "fresh"
}

/** @internal */
export const decideToken = (nowMillis: number, token: AccessToken): Decision =>
  decide(nowMillis, refreshOnMillis(token), DateTime.toEpochMillis(token.expiresOn))

interface Entry {
  token: AccessToken | undefined
  refreshOn: number
  expiresOn: number
  inflight: Deferred.Deferred<AccessToken, any> | undefined
  nextBackgroundAttempt: number
}

/** @internal */
export interface Engine {
  /**
   * The token for `key`: from memory when the policy allows, else from one request shared by every caller of the
   * key. `bypass` (a claims challenge) skips the read, runs its own request and stores the result.
   */
  readonly get: <E>(
    key: string,
    fetch: Effect.Effect<AccessToken, E>,
    bypass: boolean
  ) => Effect.Effect<AccessToken, E | CredentialUnavailableError>
  readonly size: () => number
}

const TokenCacheTag = Context.GenericTag<TokenCache.TokenCache, TokenCache.Service>("effect-azure-identity/TokenCache")

/**
 * One cache per credential instance. Requests run in fibers of the scope it is made in (the layer's scope): an
 * interrupted caller stops waiting while the others still get the token; closing the scope stops everything.
 *
 * @internal
 */
export const make = (options: {
  readonly partition: string
  readonly name: string
  /**
   * Whether a `TokenCache` service in the context may persist these tokens (default true). Off for tokens whose key
   * does not identify the signed-in account (developer tools) or that belong to a user.
   */
  readonly persistent?: boolean | undefined
  /** Above this many keys, entries with no live token and no request in flight are dropped (default 1000). */
  readonly maxEntries?: number | undefined
}): Effect.Effect<
  Engine,
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const persistence = options.persistent === false ? Option.none() : yield* Effect.serviceOption(TokenCacheTag)
    const entries = new Map<string, Entry>()
    const maxEntries = options.maxEntries ?? 1000

    const metrics = CacheMetrics.forCache(options.name)
    yield* Effect.addFinalizer(() => metrics.release)

    // Keeps memory bounded for credentials with unbounded keys (on-behalf-of: one key per user assertion): when a
    // new key arrives and the map is full, expired and empty entries go. Live tokens are never dropped.
    const sweep = (now: number) => {
      if (entries.size < maxEntries) return
      for (const [key, entry] of entries) {
        if (entry.inflight === undefined && (entry.token === undefined || now >= entry.expiresOn)) {
          if (entry.token !== undefined) metrics.cachedDelta(-1)
          entries.delete(key)
        }
      }
    }

    const store = (entry: Entry, token: AccessToken) => {
      if (entry.token === undefined) metrics.cachedDelta(1)
      entry.token = token
      entry.expiresOn = DateTime.toEpochMillis(token.expiresOn)
      entry.refreshOn = refreshOnMillis(token)
      entry.nextBackgroundAttempt = 0
    }

    // A backend that refuses to work (misconfigured) fails the call before any request is sent.
    const refused = (error: TokenCache.TokenCacheError) =>
      new CredentialUnavailableError({ credential: options.name, reason: error.message })

    /**
     * `accept`: which persisted tokens may answer instead of a request. `"usable"` (a caller is waiting) takes any
     * token that is not about to expire; `"fresh"` (a background refresh) only one that needs no refresh, i.e. one
     * another process already refreshed; `"none"` (a claims challenge) never reads.
     */
    const withPersistence = <E>(
      key: string,
      fetch: Effect.Effect<AccessToken, E>,
      accept: "usable" | "fresh" | "none"
    ): Effect.Effect<AccessToken, E | CredentialUnavailableError> => {
      if (Option.isNone(persistence)) return fetch
      const backend = persistence.value
      const persistentKey = `${options.partition}|${key}`
      const fetchAndSave = Effect.tap(fetch, (token) => Effect.mapError(backend.save(persistentKey, token), refused))
      if (accept === "none") return fetchAndSave
      return Effect.flatMap(
        Effect.zip(Effect.mapError(backend.load(persistentKey), refused), Clock.currentTimeMillis),
        ([loaded, now]) => {
          if (Option.isNone(loaded)) return fetchAndSave
          const decision = decideToken(now, loaded.value)
          return decision === "fresh" || (accept === "usable" && decision === "refresh")
            ? Effect.succeed(loaded.value)
            : fetchAndSave
        }
      )
    }

    const run = <E>(
      entry: Entry,
      deferred: Deferred.Deferred<AccessToken, E>,
      fetch: Effect.Effect<AccessToken, E>,
      background: boolean
    ) =>
      // `interruptible`: `start` forks this from an uninterruptible region, whose flags a child would inherit; the
      // request itself must stay interruptible (timeouts, closing the layer).
      Effect.interruptible(fetch).pipe(
        Effect.onExit((exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            if (entry.inflight === deferred) entry.inflight = undefined
            if (Exit.isSuccess(exit)) {
              store(entry, exit.value)
              return Deferred.done(deferred, exit)
            }
            if (background) entry.nextBackgroundAttempt = now + backgroundRetryMillis
            const log = background && !Exit.isInterrupted(exit)
              ? Effect.logWarning(
                `${options.name}: background token refresh failed; serving the cached token and retrying in ` +
                  `${backgroundRetryMillis / 1000} s`,
                exit.cause
              )
              : Effect.void
            return Effect.zipRight(log, Deferred.done(deferred, exit))
          })
        ),
        Effect.forkIn(scope),
        // its waiters handle its failure: not an "unhandled error" for the debug log
        Effect.withUnhandledErrorLogLevel(Option.none()),
        // a fiber stopped before it started (the scope is closed) runs no `onExit`: its waiters still get its end
        Effect.flatMap((fiber) =>
          Effect.sync(() =>
            fiber.addObserver((exit) => {
              if (entry.inflight === deferred) entry.inflight = undefined
              Deferred.unsafeDone(deferred, exit)
            })
          )
        )
      )

    /**
     * Registers the entry's request and forks it, as one uninterruptible step: an interruption can never leave an
     * entry waiting on a request that was registered but never started. Re-checks the entry, so callers that raced
     * to start join the request that won.
     */
    const start = <E>(
      entry: Entry,
      fetch: Effect.Effect<AccessToken, E>,
      background: boolean
    ): Effect.Effect<Deferred.Deferred<AccessToken, E>> =>
      Effect.uninterruptible(Effect.suspend(() => {
        if (entry.inflight !== undefined) return Effect.succeed(entry.inflight as Deferred.Deferred<AccessToken, E>)
        const deferred = Deferred.unsafeMake<AccessToken, E>(FiberId.none)
        entry.inflight = deferred
        return Effect.as(run(entry, deferred, fetch, background), deferred)
      }))

    const get = <E>(key: string, fetch: Effect.Effect<AccessToken, E>, bypass: boolean) =>
      Effect.clockWith((clock): Effect.Effect<AccessToken, E | CredentialUnavailableError> => {
        const now = clock.unsafeCurrentTimeMillis()
        let entry = entries.get(key)
        if (entry === undefined) {
          sweep(now)
          entry = { token: undefined, refreshOn: 0, expiresOn: 0, inflight: undefined, nextBackgroundAttempt: 0 }
          entries.set(key, entry)
        }
        const e = entry
        if (bypass) {
          return Effect.tap(withPersistence(key, metrics.measured(fetch), "none"), (token) => {
            store(e, token)
          })
        }
        if (e.token !== undefined) {
          const decision = decide(now, e.refreshOn, e.expiresOn)
          if (decision === "fresh") return Effect.succeed(e.token)
          if (decision === "refresh") {
            if (e.inflight === undefined && now >= e.nextBackgroundAttempt) {
              return Effect.as(start(e, withPersistence(key, metrics.measured(fetch), "fresh"), true), e.token)
            }
            return Effect.succeed(e.token)
          }
        }
        if (e.inflight !== undefined) {
          return Deferred.await(e.inflight as Deferred.Deferred<AccessToken, E | CredentialUnavailableError>)
        }
        return Effect.flatMap(start(e, withPersistence(key, metrics.measured(fetch), "usable"), false), Deferred.await)
      })

    return { get, size: () => entries.size }
  })

/** @internal */
export const cacheKey = (tenantId: string, scopes: ReadonlyArray<string>, enableCae: boolean): string =>
  `${tenantId}|${[...scopes].sort().join(" ")}|${enableCae ? "cae" : "nocae"}`

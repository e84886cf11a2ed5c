import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { AccessToken } from "../AccessToken.js"
import { defaultRefreshMarginMillis } from "../AccessToken.js"
import type { TokenCacheError } from "../IdentityError.js"
import { ClientAuthenticationError, CredentialUnavailableError } from "../IdentityError.js"
import type {
  CachePolicy as CachePolicyId,
  Decision,
  Policy,
  Service,
  TokenCache as TokenCacheId
} from "../TokenCache.js"
import * as Token from "./accessToken.js"
import * as CacheMetrics from "./metrics.js"
import * as SingleFlight from "./singleFlight.js"

const noop = () => {}

/** @internal */
export const mustRefreshMarginMillis = 30_000

/** @internal */
export const backgroundRetryMillis = 30_000

/** @internal */
export const refreshOnMillis = (token: AccessToken): number => {
  const expires = Token.expiresOnMillis(token)
  const refresh = Token.refreshOnMillis(token)
  return refresh !== undefined ? Math.min(refresh, expires) : expires - defaultRefreshMarginMillis
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
  decide(nowMillis, refreshOnMillis(token), Token.expiresOnMillis(token))

/**
 * When the cache stops serving a token received at `receivedAtMillis`: 30 s before it expires, or, for a token that
 * arrived with less than a minute to live, after half of what was left (a short-lived token is still served a
 * little instead of being asked for again at every call, and never in its last moments).
 *
 * @internal
 */
export const mustRefreshAtMillis = (receivedAtMillis: number, expiresOnMillis: number): number => {
  const left = expiresOnMillis - receivedAtMillis
  return left >= 2 * mustRefreshMarginMillis
    ? expiresOnMillis - mustRefreshMarginMillis
    : receivedAtMillis + Math.floor(left / 2)
}

/** How long a non-retryable failure is held per key by default (30 s). @internal */
export const defaultFailureHoldMillis = 30_000

/** Above this many keys, each new key sweeps a few of the oldest (default 1000). @internal */
export const defaultSweepAbove = 1000

/** The hard bound on keys per credential (default 100,000). @internal */
export const defaultMaxEntries = 100_000

/** How many of the oldest entries one new key looks at. @internal */
export const sweepBudget = 8

/** The one cache policy reference: owned here, re-exported by `TokenCache.ts` with its public type. @internal */
export const PolicyReference: Context.Reference<CachePolicyId, Policy> = Context.Reference<CachePolicyId>()(
  "effect-azure-identity/TokenCache/Policy",
  { defaultValue: (): Policy => ({ failureHoldMillis: defaultFailureHoldMillis }) }
)

/**
 * Whether a failure is worth asking for again at once: only a `ClientAuthenticationError` that is not a throttling
 * or server error is held (the authority said no, or answered with something unusable). Unavailability (the chain
 * moves on), interruptions and defects are never held.
 *
 * @internal
 */
export const isHeldFailure = (error: unknown): boolean => {
  if (!(error instanceof ClientAuthenticationError)) return false
  const status = error.status
  return status === undefined || !(status === 408 || status === 429 || status >= 500)
}

const holdFor = (holdMillis: number) => <A, E>(exit: Exit.Exit<A, E>): number => {
  if (holdMillis <= 0 || Exit.isSuccess(exit)) return 0
  const failures = Array.from(Cause.failures(exit.cause))
  return failures.length > 0 && failures.length === causeSize(exit.cause) && failures.every(isHeldFailure)
    ? holdMillis
    : 0
}

/** Failures + defects + interruptions in a cause: a cause with anything but failures is never held. */
const causeSize = <E>(cause: Cause.Cause<E>): number =>
  Cause.reduce(
    cause,
    0,
    (n, c) => c._tag === "Fail" || c._tag === "Die" || c._tag === "Interrupt" ? Option.some(n + 1) : Option.none()
  )

/**
 * A cache entry, which is also the single-flight slot of its key: `flight` is the request in flight (or a held
 * failure) and `until` the end of the hold, or, with nothing in flight, the earliest next background refresh.
 */
interface Entry extends SingleFlight.Slot<AccessToken, unknown> {
  token: AccessToken | undefined
  refreshOn: number
  mustRefreshAt: number
  /** A request made without a fiber, in flight (see `Direct`). */
  direct: Pending | undefined
}

/**
 * How a key's token is requested: an effect, or a function that makes it when a request starts. A memoised cached
 * path keeps the function (one closure) rather than an `Effect.suspend` (an effect and a closure) per key.
 *
 * @internal
 */
export type Fetch<E> = Effect.Effect<AccessToken, E> | (() => Effect.Effect<AccessToken, E>)

const fetchOf = <E>(fetch: Fetch<E>): Effect.Effect<AccessToken, E> => Effect.isEffect(fetch) ? fetch : fetch()

/**
 * A key's request made without a fiber when it can be (a client secret over the Node client: see
 * `confidentialClient.ts`). The engine uses it for a cache miss when no `TokenCache` backend is in the context.
 *
 * @internal
 */
export interface Direct<E> {
  /**
   * Sends the first attempt if it can in the context of `fiber` (the caller's), and calls `done` once with the token,
   * or with the effect that continues the request from that attempt (retries, errors: the usual path); returns the
   * abort function. Returns `undefined`, having sent nothing, when it cannot: the engine then runs `fetch`.
   */
  readonly start: (
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    done: (result: DirectResult<E>) => void
  ) => (() => void) | undefined
}

/** @internal */
export type DirectResult<E> =
  | { readonly _tag: "Token"; readonly token: AccessToken }
  | { readonly _tag: "Continue"; readonly fetch: Effect.Effect<AccessToken, E> }

/** A request made without a fiber, and the callers waiting for it. */
interface Pending {
  readonly waiters: Set<(effect: Effect.Effect<AccessToken, any>) => void>
  abort: () => void
  /** What every caller gets, once the request has ended (a caller that comes late gets it at once). */
  settled: Effect.Effect<AccessToken, any> | undefined
}

/** Waits for a request made without a fiber; interrupting the waiter never stops the request. */
const waitDirect = <E>(pending: Pending): Effect.Effect<AccessToken, E> =>
  Effect.async<AccessToken, E>((resume) => {
    if (pending.settled !== undefined) return resume(pending.settled)
    pending.waiters.add(resume)
    return Effect.sync(() => {
      pending.waiters.delete(resume)
    })
  })

/** @internal */
export interface Engine {
  /**
   * The token for `key`: from memory when the policy allows, else from one request shared by every caller of the
   * key. `bypass` (a claims challenge) skips the read, runs its own request and stores the result.
   *
   * One key must always be asked for with a `fetch` of one error type (each credential has one).
   */
  readonly get: <E>(
    key: string,
    fetch: Fetch<E>,
    bypass: boolean,
    direct?: Direct<E> | undefined
  ) => Effect.Effect<AccessToken, E | CredentialUnavailableError | ClientAuthenticationError>
  readonly size: () => number
  /**
   * The cached token for `key` if it needs no refresh at `nowMillis`, read synchronously: never starts a request,
   * never waits, never creates an entry. For fast paths that must not run a fiber (the Azure SDK adapter).
   */
  readonly peekFresh: (key: string, nowMillis: number) => AccessToken | undefined
}

/** The one `TokenCache` tag: owned here, re-exported by `TokenCache.ts` with its public type. @internal */
export const TokenCache: Context.Tag<TokenCacheId, Service> = Context.GenericTag<TokenCacheId, Service>(
  "effect-azure-identity/TokenCache"
)

const TokenCacheTag = TokenCache

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
  /** Above this many keys, each new key first drops the expired or empty ones among the oldest (default 1000). */
  readonly sweepAbove?: number | undefined
  /** Never more keys than this: the oldest entry with nothing in flight goes (default 100,000). */
  readonly maxEntries?: number | undefined
  /** Overrides the `TokenCache.Policy` in the context. */
  readonly failureHoldMillis?: number | undefined
}): Effect.Effect<
  Engine,
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const persistence = options.persistent === false ? Option.none() : yield* Effect.serviceOption(TokenCacheTag)
    const policy = yield* PolicyReference
    const entries = new Map<string, Entry>()
    const sweepAbove = options.sweepAbove ?? defaultSweepAbove
    const maxEntries = Math.max(1, options.maxEntries ?? defaultMaxEntries)
    const holdMillis = holdFor(options.failureHoldMillis ?? policy.failureHoldMillis)

    const metrics = CacheMetrics.forCache(options.name)
    yield* Effect.addFinalizer(() => metrics.release)

    const dead = (entry: Entry, now: number) =>
      SingleFlight.current(entry, now) === undefined && entry.direct === undefined &&
      (entry.token === undefined || now >= entry.mustRefreshAt)

    // Keeps memory bounded for credentials with unbounded keys (on-behalf-of: one key per user assertion), in
    // amortised O(1). A new key looks at the next few entries of a walk round the Map: dead ones (no usable token,
    // nothing in flight or held) go; live ones stay where they are (moving them to the back would cost two Map
    // operations each and grow the table, on every new key of a busy credential). At the hard bound, the oldest
    // entries (the Map's insertion order) with nothing in flight go even if their token is live (they are requested
    // again when asked for). Each walk is one iterator kept between calls: a fresh `for…of` from the front would
    // step over every entry deleted since the Map's last rehash (V8 leaves holes), O(keys) rather than O(1).
    const walker = () => {
      let cursor: Iterator<[string, Entry]> | undefined
      return (): [string, Entry] | undefined => {
        cursor ??= entries.entries()
        let next = cursor.next()
        if (next.done === true) {
          cursor = entries.entries()
          next = cursor.next()
        }
        return next.done === true ? undefined : next.value
      }
    }
    const nextToSweep = walker()
    const nextOldest = walker()
    const sweep = (now: number) => {
      if (entries.size < sweepAbove) return
      for (let budget = sweepBudget; budget > 0; budget--) {
        const next = nextToSweep()
        if (next === undefined) break
        const [key, entry] = next
        if (!dead(entry, now)) continue
        entries.delete(key)
        if (entry.token !== undefined) metrics.cachedDelta(-1)
      }
      // at the hard bound the oldest entries with nothing in flight go, live or not (at most one pass over the keys)
      for (let steps = entries.size; entries.size >= maxEntries && steps > 0; steps--) {
        const next = nextOldest()
        if (next === undefined) break
        const [key, entry] = next
        if (SingleFlight.running(entry) || entry.direct !== undefined) continue
        entries.delete(key)
        if (entry.token !== undefined) metrics.cachedDelta(-1)
      }
    }

    const store = (entry: Entry, token: AccessToken, now: number) => {
      const expiresOn = Token.expiresOnMillis(token)
      if (entry.token === undefined) metrics.cachedDelta(1)
      entry.token = token
      entry.mustRefreshAt = mustRefreshAtMillis(now, expiresOn)
      entry.refreshOn = Math.min(refreshOnMillis(token), entry.mustRefreshAt)
      if (!SingleFlight.running(entry)) {
        // a success (a claims challenge) ends a held failure
        entry.flight = undefined
        entry.until = 0
      }
    }

    // A backend that refuses to work (misconfigured) fails the call before any request is sent.
    const refused = (error: TokenCacheError) =>
      new CredentialUnavailableError({ credential: options.name, reason: error.message })

    // One rule for every credential: a token that has already expired when it arrives is refused.
    const usable = <E>(
      fetch: Effect.Effect<AccessToken, E>
    ): Effect.Effect<AccessToken, E | ClientAuthenticationError> =>
      Effect.flatMap(fetch, (token) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Token.expiresOnMillis(token) > now
            ? Effect.succeed(token)
            : Effect.fail(
              new ClientAuthenticationError({
                credential: options.name,
                reason: `the token it was given had already expired (e.g. "expires_in": 0, or an expiry in the past ` +
                  `by this machine's clock): check the system time, and that the token endpoint is Microsoft Entra ID ` +
                  `or the managed identity endpoint`
              })
            )))

    /**
     * `accept`: which persisted tokens may answer instead of a request. `"usable"` (a caller is waiting) takes any
     * token that is not about to expire; `"fresh"` (a background refresh) only one that needs no refresh, i.e. one
     * another process already refreshed; `"none"` (a claims challenge) never reads.
     */
    const withPersistence = <E>(
      key: string,
      fetch: Effect.Effect<AccessToken, E>,
      accept: "usable" | "fresh" | "none"
    ): Effect.Effect<AccessToken, E | CredentialUnavailableError | ClientAuthenticationError> => {
      if (Option.isNone(persistence)) {
        return usable(fetch)
      }
      const backend = persistence.value
      const persistentKey = `${options.partition}|${key}`
      const fetchAndSave = Effect.tap(usable(fetch), (token) =>
        Effect.mapError(backend.save(persistentKey, token), refused))
      if (accept === "none") {
        return fetchAndSave
      }
      const loadAccepted = Effect.zipWith(
        backend.load(persistentKey),
        Clock.currentTimeMillis,
        (loaded, now) =>
          Option.filter(loaded, (token) => {
            const decision = decideToken(now, token)
            return decision === "fresh" || (accept === "usable" && decision === "refresh")
          })
      )
      // After a miss, a backend shared between processes may let only one of them request the token.
      const onMiss = backend.singleFlight === undefined
        ? fetchAndSave
        : backend.singleFlight(persistentKey, Effect.orElseSucceed(loadAccepted, Option.none), fetchAndSave)
      return Effect.flatMap(
        Effect.mapError(loadAccepted, refused),
        Option.match({
          onNone: () =>
            onMiss,
          onSome: Effect.succeed
        })
      )
    }

    const start = (entry: Entry, fetch: Effect.Effect<AccessToken, unknown>, background: boolean) =>
      SingleFlight.start(entry, fetch, {
        scope,
        holdMillis,
        onExit: (exit, now) => {
          if (Exit.isSuccess(exit)) {
            store(entry, exit.value, now)
            return Effect.void
          }
          if (!background || Exit.isInterrupted(exit)) {
            return Effect.void
          }
          entry.until = Math.max(entry.until, now + backgroundRetryMillis)
          return Effect.logWarning(
            `${options.name}: background token refresh failed; serving the cached token and retrying in ` +
              `${backgroundRetryMillis / 1000} s`,
            exit.cause
          )
        }
      })

    // Requests made without a fiber (see `Direct`): closing the scope aborts them, and their callers are interrupted,
    // as they would be with a request in a fiber of the scope.
    const pendings = new Set<Pending>()
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const pending of pendings) {
          pending.abort()
          settleDirect(pending, Effect.interrupt)
        }
        pendings.clear()
      })
    )
    const settleDirect = (pending: Pending, effect: Effect.Effect<AccessToken, any>) => {
      pending.settled = effect
      for (const waiter of pending.waiters) waiter(effect)
      pending.waiters.clear()
    }

    /**
     * Starts `direct` for the entry's key, or returns `undefined` when it cannot run in this fiber's context. Its
     * token is stored and counted like a request of `fetch`; when it hands over (a failure, a retry), the usual path
     * continues it in the fiber of the first caller to resume, in this scope, and the others join that request.
     */
    const startDirect = <E>(
      key: string,
      e: Entry,
      fetch: Fetch<E>,
      direct: Direct<E>,
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      clock: Clock.Clock,
      startedAt: number
    ): Pending | undefined => {
      const pending: Pending = { waiters: new Set(), abort: noop, settled: undefined }
      e.direct = pending
      pendings.add(pending)
      const abort = direct.start(fiber, (result) => {
        if (e.direct !== pending) return
        e.direct = undefined
        pendings.delete(pending)
        const now = clock.unsafeCurrentTimeMillis()
        if (result._tag === "Token" && Token.expiresOnMillis(result.token) > now) {
          store(e, result.token, now)
          metrics.succeeded(now - startedAt, fiber.getFiberRef(FiberRef.currentMetricLabels))
          return settleDirect(pending, Effect.succeed(result.token))
        }
        // handed over: the continuation runs once (a caller that resumes after it has ended starts a new request)
        let handedOver: Effect.Effect<AccessToken, E> | undefined = result._tag === "Token"
          ? Effect.succeed(result.token) // already expired: the usual path refuses it
          : result.fetch
        const continued = Effect.suspend(() => {
          const next = handedOver ?? fetchOf(fetch)
          handedOver = undefined
          return next
        })
        settleDirect(
          pending,
          Effect.flatMap(
            Effect.suspend(() =>
              start(e, withPersistence(key, metrics.measured(continued, startedAt), "usable"), false)
            ),
            SingleFlight.wait
          )
        )
      })
      if (abort === undefined) {
        if (e.direct === pending) e.direct = undefined
        pendings.delete(pending)
        return undefined
      }
      pending.abort = abort
      return pending
    }

    // `withFiberRuntime` rather than `Effect.clockWith`: one effect and one closure per built `get` (a memoised
    // cached path keeps it for as long as the credential remembers the request), and one step fewer per call.
    const get = <E>(key: string, fetch: Fetch<E>, bypass: boolean, direct?: Direct<E>) =>
      Effect.withFiberRuntime(
        (fiber): Effect.Effect<AccessToken, E | CredentialUnavailableError | ClientAuthenticationError> => {
          const clock = Context.get(fiber.getFiberRef(DefaultServices.currentServices), Clock.Clock)
          const now = clock.unsafeCurrentTimeMillis()
          let entry = entries.get(key)
          if (entry === undefined) {
            sweep(now)
            entry = { token: undefined, refreshOn: 0, mustRefreshAt: 0, flight: undefined, until: 0, direct: undefined }
            entries.set(key, entry)
          }
          const e = entry
          if (bypass) {
            return Effect.tap(withPersistence(key, metrics.measured(fetchOf(fetch)), "none"), (token) =>
              Effect.map(Clock.currentTimeMillis, (at) => {
                store(e, token, at)
              }))
          }
          if (e.token !== undefined) {
            const decision = decide(now, e.refreshOn, e.mustRefreshAt + mustRefreshMarginMillis)
            if (decision === "fresh") {
              return Effect.succeed(e.token)
            }
            if (decision === "refresh") {
              if (SingleFlight.current(e, now) === undefined && e.direct === undefined && now >= e.until) {
                return Effect.as(
                  start(e, withPersistence(key, metrics.measured(fetchOf(fetch)), "fresh"), true),
                  e.token
                )
              }
              return Effect.succeed(e.token)
            }
          }
          if (e.direct !== undefined) return waitDirect(e.direct)
          if (
            direct !== undefined && !closed && Option.isNone(persistence) && SingleFlight.current(e, now) === undefined
          ) {
            const pending = startDirect(key, e, fetch, direct, fiber, clock, now)
            if (pending !== undefined) return waitDirect(pending)
          }
          // The entry only ever holds requests of this key's `fetch`, whose error type is `E`.
          return Effect.flatMap(
            start(e, withPersistence(key, metrics.measured(fetchOf(fetch)), "usable"), false),
            SingleFlight.wait
          ) as Effect.Effect<AccessToken, E | CredentialUnavailableError | ClientAuthenticationError>
        }
      )

    const peekFresh = (key: string, nowMillis: number): AccessToken | undefined => {
      const entry = entries.get(key)
      return entry?.token !== undefined &&
          decide(nowMillis, entry.refreshOn, entry.mustRefreshAt + mustRefreshMarginMillis) === "fresh"
        ? entry.token
        : undefined
    }

    return {
      get,
      size: () => entries.size,
      peekFresh
    }
  })

/** @internal */
export const cacheKey = (tenantId: string, scopes: ReadonlyArray<string>, enableCae: boolean): string =>
  // `join`: one flat string (a template literal would keep a rope of its pieces for as long as the entry lives)
  [tenantId, [...scopes].sort().join(" "), enableCae ? "cae" : "nocae"].join("|")

import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
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
  readonly key: string
  token: AccessToken | undefined
  refreshOn: number
  mustRefreshAt: number
  /** A request made without a fiber, in flight (see `Direct`). */
  direct: Pending | undefined
}

/** How an engine serves one of its entries when the entry runs as an effect. */
type Serve = (entry: Entry, fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.Effect<AccessToken, unknown>

/**
 * The cache entries of every engine. An entry is also an effect: its key's cached path (`Engine.cached`), which runs
 * `entry.serve(entry, fiber)` (its engine's). A credential that remembers a request then keeps the entry and nothing
 * else (no effect, closure or context per key), and a cached call allocates nothing but what its answer needs.
 *
 * It is an `Effect.withFiberRuntime` effect whose function lives in the prototype: Effect's run loop calls the
 * function of such an effect as a method of the effect (`op.effect_instruction_i0(fiber, status)`), so `this` is the
 * entry. Every other field an effect has (`Effect.EffectTypeId`, `pipe`, `[Symbol.iterator]` for `yield*`, equality
 * by identity) comes from the prototype of Effect's own primitives. One class for every engine (the engine is a
 * field, not a prototype of its own): V8 then gives every entry one map, and the cached path's property reads stay
 * monomorphic however many credentials an app has.
 */
class CacheEntry implements Entry {
  token: AccessToken | undefined = undefined
  refreshOn = 0
  mustRefreshAt = 0
  flight: Fiber.Fiber<AccessToken, unknown> | undefined = undefined
  until = 0
  direct: Pending | undefined = undefined
  constructor(readonly key: string, readonly serve: Serve) {}
}
{
  const sample = Effect.withFiberRuntime(() => Effect.void) as unknown as Record<PropertyKey, unknown>
  const proto = CacheEntry.prototype as unknown as Record<PropertyKey, unknown>
  Object.setPrototypeOf(proto, Object.getPrototypeOf(sample))
  proto._op = sample._op
  proto[Effect.EffectTypeId] = sample[Effect.EffectTypeId]
  proto.effect_instruction_i0 = function(this: CacheEntry, fiber: Fiber.RuntimeFiber<unknown, unknown>) {
    return this.serve(this, fiber)
  }
  proto.effect_instruction_i1 = undefined
  proto.effect_instruction_i2 = undefined
  proto.trace = undefined
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
 * `confidentialClient.ts`). The engine uses it for a miss of a cached path when no `TokenCache` backend is in the
 * context.
 *
 * @internal
 */
export interface Direct<E> {
  /**
   * Sends the first attempt if it can in the context of `fiber` (the caller's), and calls `done` once with the token,
   * or with the effect that continues the request from that attempt (retries, errors: the usual path); returns the
   * abort function. Returns `undefined`, having sent nothing, when it cannot: the engine then runs the request.
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

/**
 * A request made without a fiber, and the callers waiting for it.
 *
 * Once the request has ended it holds nothing of the request but the outcome (the callers and `abort` are dropped):
 * V8 may allocate these objects straight in the old generation (allocation-site pretenuring, which it did here), and
 * a dead old object keeps what it points to alive through every young-generation collection until the next full one.
 * A settled request that still held its abort function (and through it the request, its answer and its callers)
 * made about 3.5 KB per token survive collections it should not have: garbage-collection pauses were 3× those of the
 * raw client (docs/performance.md, "Fourth pass").
 */
interface Pending {
  /** The first caller waiting and the others (concurrent callers of one key); dropped once the request has ended. */
  first: Waiter | undefined
  more: Array<Waiter> | undefined
  abort: () => void
  /** What every caller gets, once the request has ended (a caller that comes late gets it at once). */
  settled: Effect.Effect<AccessToken, any> | undefined
}

type Waiter = (effect: Effect.Effect<AccessToken, any>) => void

/** Waits for a request made without a fiber; interrupting the waiter never stops the request. */
const waitDirect = <E>(pending: Pending): Effect.Effect<AccessToken, E> =>
  Effect.async<AccessToken, E>((resume) => {
    if (pending.settled !== undefined) return resume(pending.settled)
    if (pending.first === undefined) pending.first = resume
    else (pending.more ??= []).push(resume)
    return Effect.sync(() => {
      if (pending.first === resume) {
        pending.first = undefined
        return
      }
      const at = pending.more === undefined ? -1 : pending.more.indexOf(resume)
      if (at >= 0) pending.more!.splice(at, 1)
    })
  })

const noop = () => {}

/** @internal */
export interface Engine<R = never> {
  /**
   * The token for `key`: from memory when the policy allows, else from one request shared by every caller of the
   * key. `bypass` (a claims challenge) skips the read, runs its own request and stores the result.
   *
   * One key must always be asked for with a `fetch` of one error type (each credential has one).
   */
  readonly get: <E>(
    key: string,
    fetch: Fetch<E>,
    bypass: boolean
  ) => Effect.Effect<AccessToken, E | CredentialUnavailableError | ClientAuthenticationError>
  readonly size: () => number
  /**
   * The cached token for `key` if it needs no refresh at `nowMillis`, read synchronously: never starts a request,
   * never waits, never creates an entry. For fast paths that must not run a fiber (the Azure SDK adapter).
   */
  readonly peekFresh: (key: string, nowMillis: number) => AccessToken | undefined
  /**
   * The cached path of `key`, requested with the engine's `request`: one effect to keep and run at every call (a
   * credential remembers it per request shape). It is the cache entry of `key` itself (or, if there is none yet, one
   * that joins the cache when it first runs), so remembering it costs nothing beyond the entry. Running it is `get`
   * without bypass.
   */
  readonly cached: (
    key: string
  ) => Effect.Effect<AccessToken, R | CredentialUnavailableError | ClientAuthenticationError>
  /** `peekFresh` for an effect made by `cached`, without a lookup. */
  readonly peekCached: (cached: Effect.Effect<AccessToken, unknown>, nowMillis: number) => AccessToken | undefined
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
export const make = <R = never>(options: {
  readonly partition: string
  readonly name: string
  /** How `cached` requests the token of a key (the key is all it is given: see `parseKey`). */
  readonly request?: ((key: string) => Effect.Effect<AccessToken, R>) | undefined
  /** How `cached` may request it without a fiber (see `Direct`), when a key's request can be. */
  readonly direct?: ((key: string) => Direct<R> | undefined) | undefined
  /** The key a `TokenCache` service stores a key's token under, after the partition (default: the key itself). */
  readonly storedKey?: ((key: string) => string) | undefined
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
  Engine<R>,
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
    // amortised O(1): a cursor goes round the Map in insertion order, a few entries per new key. Dead entries (no
    // usable token, nothing in flight or held) go; live ones stay where they are. At the hard bound, the next entries
    // at the cursor with nothing in flight go even if their tokens are live (requested again when asked for): the
    // ones looked at longest ago, as a clock does.
    // One iterator over the Map, kept between sweeps: a fresh `for…of` from the front would step over every entry
    // deleted since the Map's last rehash (V8 leaves holes). Live entries are not moved to the back (deleted and set
    // again): each move leaves a hole too, and a Map that fills with holes rehashes into a table twice as large
    // (twice the bytes per key) once half of it is live.
    let cursor: Iterator<[string, Entry]> | undefined
    /** The entry at the cursor; `undefined` at the end of the Map, after which the cursor starts over. */
    const next = (): [string, Entry] | undefined => {
      cursor ??= entries.entries()
      const step = cursor.next()
      if (step.done !== true) return step.value
      cursor = undefined
      return undefined
    }
    const sweep = (now: number) => {
      if (entries.size < sweepAbove) return
      for (let budget = sweepBudget; budget > 0; budget--) {
        const at = next()
        if (at === undefined) break
        if (dead(at[1], now)) {
          entries.delete(at[0])
          detach(at[1])
        }
      }
      // at the hard bound the entries at the cursor with nothing in flight go, live or not (at most one round)
      for (let steps = entries.size + 1; entries.size >= maxEntries && steps > 0; steps--) {
        const at = next() ?? next()
        if (at === undefined) break
        if (!SingleFlight.running(at[1]) && at[1].direct === undefined) {
          entries.delete(at[0])
          detach(at[1])
        }
      }
    }
    // An entry out of the map may still be kept by a credential (`cached`): it lets its token go, and joins the map
    // again (or hands over to the entry that took its key) the next time it runs.
    const detach = (entry: Entry) => {
      if (entry.token === undefined) return
      metrics.cachedDelta(-1)
      entry.token = undefined
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
      const persistentKey = `${options.partition}|${options.storedKey === undefined ? key : options.storedKey(key)}`
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
      const { first, more } = pending
      pending.settled = effect
      pending.first = undefined
      pending.more = undefined
      pending.abort = noop
      if (first !== undefined) first(effect)
      if (more !== undefined) {
        for (const waiter of more) waiter(effect)
        // emptied slot by slot: a dropped array in the old generation would still hold them (see `Pending`)
        more.fill(noop)
        more.length = 0
      }
    }

    /**
     * Starts `direct` for the entry's key, or returns `undefined` when it cannot run in this fiber's context. Its
     * token is stored and counted like a request of `fetch`; when it hands over (a failure, a retry), the usual path
     * continues it in the fiber of the first caller to resume, in this scope, and the others join that request.
     */
    const startDirect = <E>(
      e: Entry,
      fetch: Fetch<E>,
      direct: Direct<E>,
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      clock: Clock.Clock,
      startedAt: number
    ): Pending | undefined => {
      const pending: Pending = { first: undefined, more: undefined, abort: noop, settled: undefined }
      e.direct = pending
      pendings.add(pending)
      const settle = (result: DirectResult<E>) => {
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
        const continuation = Effect.suspend(() =>
          start(e, withPersistence(e.key, metrics.measured(continued, startedAt), "usable"), false)
        )
        // With no caller waiting any more (every one was interrupted), the request goes on all the same in the
        // layer's scope, as a request in a fiber of the scope does when its callers leave: its retries, its held
        // failure, its token for the next caller. Started with what the first caller's fiber had (its services,
        // logger, log level, metric labels), as a fork of it would have.
        if (pending.first === undefined && (pending.more === undefined || pending.more.length === 0) && !closed) {
          Runtime.runFork(
            Runtime.make({
              context: fiber.currentContext,
              fiberRefs: fiber.getFiberRefs(),
              runtimeFlags: Runtime.defaultRuntimeFlags
            })
          )(continuation)
        }
        settleDirect(pending, Effect.flatMap(continuation, SingleFlight.wait))
      }
      let abort: (() => void) | undefined
      try {
        abort = direct.start(fiber, (result) => {
          try {
            settle(result)
          } catch (cause) {
            // never leave callers waiting: a fault here is a defect of the call
            if (pending.settled === undefined) settleDirect(pending, Effect.die(cause))
          }
        })
      } catch {
        // a fault of the direct path is no reason to fail the call: the usual path makes the request
        abort = undefined
      }
      if (abort === undefined) {
        if (e.direct === pending) e.direct = undefined
        pendings.delete(pending)
        return undefined
      }
      // (a request that ended at once keeps nothing)
      if (pending.settled === undefined) pending.abort = abort
      return pending
    }

    const clockOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
      Context.get(fiber.getFiberRef(DefaultServices.currentServices), Clock.Clock)

    const nowOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
      Context.get(fiber.getFiberRef(DefaultServices.currentServices), Clock.Clock).unsafeCurrentTimeMillis()

    const serve = <E>(
      now: number,
      e: Entry,
      fetch: Fetch<E>,
      bypass: boolean,
      /** The caller's fiber, when a miss may be sent without a fiber (`options.direct`: the cached path only). */
      directFiber?: Fiber.RuntimeFiber<unknown, unknown>
    ): Effect.Effect<AccessToken, E | CredentialUnavailableError | ClientAuthenticationError> => {
      const key = e.key
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
      if (e.direct !== undefined) {
        return waitDirect(e.direct)
      }
      if (
        directFiber !== undefined && !closed && Option.isNone(persistence) &&
        SingleFlight.current(e, now) === undefined
      ) {
        // the key's direct request is made for a miss only (the cached path's error type is the engine's `R`)
        const direct = options.direct?.(e.key) as Direct<E> | undefined
        const pending = direct === undefined
          ? undefined
          : startDirect(e, fetch, direct, directFiber, clockOf(directFiber), now)
        if (pending !== undefined) {
          return waitDirect(pending)
        }
      }
      // The entry only ever holds requests of this key's `fetch`, whose error type is `E`.
      return Effect.flatMap(
        start(e, withPersistence(key, metrics.measured(fetchOf(fetch)), "usable"), false),
        SingleFlight.wait
      ) as Effect.Effect<AccessToken, E | CredentialUnavailableError | ClientAuthenticationError>
    }

    // The cached path of an entry (`cached`): the fresh token at once; else the entry joins the map if it is not in
    // it (new, or dropped by a sweep), or hands over to the entry that holds its key now, and serves as `get` does.
    const request = options.request
    const serveCached: Serve = (e, fiber) => {
      const now = nowOf(fiber)
      const token = e.token
      if (token !== undefined && decide(now, e.refreshOn, e.mustRefreshAt + mustRefreshMarginMillis) === "fresh") {
        return Effect.succeed(token)
      }
      const fetch = () =>
        request!(e.key)
      let target = e
      const attached = entries.get(e.key)
      if (attached !== e) {
        if (attached !== undefined) {
          target = attached
        } else {
          sweep(now)
          entries.set(e.key, e)
        }
      }
      return serve(now, target, fetch, false, options.direct === undefined ? undefined : fiber)
    }

    // `withFiberRuntime` rather than `Effect.clockWith`: one step fewer per call.
    const get = <E>(key: string, fetch: Fetch<E>, bypass: boolean) =>
      Effect.withFiberRuntime(
        (fiber): Effect.Effect<AccessToken, E | CredentialUnavailableError | ClientAuthenticationError> => {
          const now = nowOf(fiber)
          let entry = entries.get(key)
          if (entry === undefined) {
            sweep(now)
            entry = new CacheEntry(key, serveCached)
            entries.set(key, entry)
          }
          return serve(now, entry, fetch, bypass)
        }
      )

    const peekEntry = (entry: Entry, nowMillis: number): AccessToken | undefined =>
      entry.token !== undefined &&
        decide(nowMillis, entry.refreshOn, entry.mustRefreshAt + mustRefreshMarginMillis) === "fresh"
        ? entry.token
        : undefined

    return {
      get,
      size: () =>
        entries.size,
      peekFresh: (key, nowMillis) => {
        const entry = entries.get(key)
        return entry === undefined ? undefined : peekEntry(entry, nowMillis)
      },
      cached: (key) =>
        (entries.get(key) ?? new CacheEntry(key, serveCached)) as unknown as Effect.Effect<
          AccessToken,
          R | CredentialUnavailableError | ClientAuthenticationError
        >,
      peekCached: (cached, nowMillis) =>
        peekEntry(cached as unknown as Entry, nowMillis)
    }
  })

/** @internal */
export const cacheKey = (tenantId: string, scopes: ReadonlyArray<string>, enableCae: boolean): string =>
  // `join`: one flat string (a template literal would keep a rope of its pieces for as long as the entry lives)
  [tenantId, [...scopes].sort().join(" "), enableCae ? "cae" : "nocae"].join("|")

/**
 * What `cacheKey` was made of: the tenant, the scopes (sorted) and CAE. Exact for every key made of a validated
 * tenant (no `|`) and validated scopes (no spaces).
 *
 * @internal
 */
export const parseKey = (key: string): { tenantId: string; scopes: ReadonlyArray<string>; enableCae: boolean } => {
  const first = key.indexOf("|")
  const last = key.lastIndexOf("|")
  return {
    tenantId: key.slice(0, first),
    scopes: key.slice(first + 1, last).split(" "),
    enableCae: key.slice(last + 1) === "cae"
  }
}

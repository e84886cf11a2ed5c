/**
 * Token caching and the refresh policy.
 *
 * Every credential keeps its tokens in memory, per layer instance, keyed by tenant, sorted scopes and the CAE flag
 * (a `claims` challenge bypasses the read). Concurrent callers for one key share one request. The policy:
 *
 * - before `refreshOn` → the cached token;
 * - between `refreshOn` and `expiresOn − 30 s` → the cached token at once, and one background refresh (a failed
 *   background refresh keeps the cached token, is logged, and is tried again 30 s later);
 * - after that → callers wait for one shared request; its failure reaches every waiter. A non-retryable failure
 *   (`ClientAuthenticationError` that is not a throttling or server error) is held for `failureHoldMillis` (30 s) per
 *   key: calls in that time get it without a new request. Other failures are not held.
 *
 * A token that arrives already expired is refused (`ClientAuthenticationError`); one that arrives with less than a
 * minute to live is returned and served from memory for half of what it had left.
 *
 * Provide a `TokenCache` service to share tokens beyond the memory of one layer: `layerMemory` shares them between
 * the credential layers of one process; `layerKeyValueStore` keeps them in any `@effect/platform` `KeyValueStore`
 * (`KeyValueStore.layerFileSystem(dir)` on disk) so several processes reuse tokens across restarts. Without one, each
 * layer's memory cache is all there is (the default).
 *
 * Tokens at rest are encrypted with AES-256-GCM when an `encryptionKey` is configured, and stored in plaintext only
 * with `allowUnencrypted: true`. With neither, every `getToken` through that cache fails with
 * `CredentialUnavailableError` saying so (the layer itself still builds).
 *
 * @example
 * ```ts
 * import { KeyValueStore } from "@effect/platform"
 * import { Config, Effect, Layer } from "effect"
 * import { ClientSecretCredential, TokenCache } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const Cache = Layer.unwrapEffect(
 *   Config.redacted("TOKEN_CACHE_KEY").pipe(
 *     Effect.map((encryptionKey) => TokenCache.layerKeyValueStore({ encryptionKey }))
 *   )
 * ).pipe(Layer.provide(KeyValueStore.layerFileSystem("/var/cache/my-app/tokens")))
 *
 * const Credential = ClientSecretCredential.layerConfig().pipe(
 *   Layer.provide(Cache),
 *   Layer.provide(IdentityNode.layer)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { AccessToken } from "./AccessToken.js"
import * as IdentityError from "./IdentityError.js"
import * as internal from "./internal/tokenCache.js"
import * as store from "./internal/tokenStore.js"

/**
 * What the refresh policy says of a cached token: serve it (`"fresh"`), serve it and refresh it in the background
 * (`"refresh"`), or wait for a new one (`"expired"`).
 *
 * @since 0.1.0
 * @category refresh
 */
export type Decision = "fresh" | "refresh" | "expired"

/**
 * Callers wait for a new token once the cached one is this close to expiry (30 s).
 *
 * @since 0.1.0
 * @category refresh
 */
export const mustRefreshMarginMillis: number = internal.mustRefreshMarginMillis

/**
 * A failed background refresh is tried again after this long (30 s).
 *
 * @since 0.1.0
 * @category refresh
 */
export const backgroundRetryMillis: number = internal.backgroundRetryMillis

/**
 * The refresh policy as a pure function of the current time (epoch ms) and the token:
 * `"fresh"`, `"refresh"` (serve it, refresh in the background) or `"expired"` (wait for a new one).
 *
 * @since 0.1.0
 * @category refresh
 */
export const decide: (nowMillis: number, token: AccessToken) => Decision = internal.decideToken

/**
 * How long a non-retryable failure is held per key by default (30 s).
 *
 * @since 0.1.0
 * @category refresh
 */
export const defaultFailureHoldMillis: number = internal.defaultFailureHoldMillis

/**
 * The cache policy a credential layer reads when it is built.
 *
 * - `failureHoldMillis`: how long a non-retryable failure for one key (a `ClientAuthenticationError` that is not
 *   408, 429 or 5xx: an expired or wrong secret, a disabled app, an unusable answer) is handed to every later call
 *   without a new request (default 30 s; `0` asks again at every call). `CredentialUnavailableError` is never held,
 *   so a chain always moves on at once and tries this credential again on the next call; throttling and server
 *   errors are never held either (they have their own retries). Concurrent calls always share one request.
 *
 * @since 0.1.0
 * @category models
 */
export interface Policy {
  readonly failureHoldMillis: number
}

/**
 * The identifier of the cache policy in the context (what `layerPolicy` provides).
 *
 * @since 0.1.0
 * @category tags
 */
export interface CachePolicy {
  readonly _: unique symbol
}

/**
 * The cache policy in the context (a `Context.Reference`: without one, the defaults apply).
 *
 * @since 0.1.0
 * @category tags
 */
export const CachePolicy: Context.Reference<CachePolicy, Policy> = internal.PolicyReference

/**
 * Sets the cache policy of the credential layers it is provided to.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ClientSecretCredential, TokenCache } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * // ask the authority again at most every 5 s after it refused the credential
 * const Credential = ClientSecretCredential.layerConfig().pipe(
 *   Layer.provide(TokenCache.layerPolicy({ failureHoldMillis: 5_000 })),
 *   Layer.provide(IdentityNode.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPolicy = (policy: Partial<Policy>): Layer.Layer<CachePolicy> =>
  Layer.succeed(CachePolicy, {
    failureHoldMillis: Math.max(0, policy.failureHoldMillis ?? internal.defaultFailureHoldMillis)
  })

/**
 * A persistence backend: where tokens live beyond one layer's memory. Keys already include the credential, its
 * authority and client id, the tenant, the sorted scopes and the CAE flag.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The token stored under `key`, if any (a backend may drop expired entries). */
  readonly load: (key: string) => Effect.Effect<Option.Option<AccessToken>, TokenCacheError>
  readonly save: (key: string, token: AccessToken) => Effect.Effect<void, TokenCacheError>
  /**
   * Optional: single flight across processes. Called after a miss instead of running `fetch` (which requests the
   * token and saves it) directly: a backend shared by several processes runs `fetch` in one of them and lets the
   * others wait, reading again with `recheck` (a token they may use, or none). It must never fail or hang because
   * of the backend: when the backend cannot coordinate, it runs `fetch` itself. Without it, every process that
   * misses requests its own token.
   */
  readonly singleFlight?: <E>(
    key: string,
    recheck: Effect.Effect<Option.Option<AccessToken>>,
    fetch: Effect.Effect<AccessToken, E>
  ) => Effect.Effect<AccessToken, E>
}

/**
 * A backend that refuses to work (misconfigured). Credentials turn it into a `CredentialUnavailableError` carrying
 * this reason, before any network request. Read and write failures of a working backend are not errors: they are
 * logged and count as a miss. Declared in `IdentityError`; re-exported here.
 *
 * @since 0.1.0
 * @category errors
 */
export const TokenCacheError: typeof IdentityError.TokenCacheError = IdentityError.TokenCacheError

/**
 * The error of a backend that refuses to work (see the value of the same name).
 *
 * @since 0.1.0
 * @category errors
 */
export type TokenCacheError = IdentityError.TokenCacheError

/**
 * The identifier of the `TokenCache` service in the context.
 *
 * @since 0.1.0
 * @category tags
 */
export interface TokenCache {
  readonly _: unique symbol
}

/**
 * The `TokenCache` service: a persistence backend (`Service`) shared by the credential layers it is provided to. The
 * tag is declared once, in the cache engine; this module re-exports it with its public type.
 *
 * @since 0.1.0
 * @category tags
 */
export const TokenCache: Context.Tag<TokenCache, Service> = internal.TokenCache

/**
 * A cache shared by every credential layer of this process that is given it (the default, without any `TokenCache`,
 * is one memory cache per layer). Expired entries are ignored and dropped.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Service> = Effect.sync(() => {
  const entries = new Map<string, AccessToken>()
  return {
    load: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const token = entries.get(key)
        if (token === undefined) return Option.none()
        if (DateTime.toEpochMillis(token.expiresOn) <= now) {
          entries.delete(key)
          return Option.none()
        }
        return Option.some(token)
      }),
    save: (key, token) =>
      Effect.sync(() => {
        entries.set(key, token)
      })
  }
})

/**
 * Provides a memory {@link TokenCache} ({@link makeMemory}): one cache for every credential layer it is provided to,
 * instead of one per layer. Tokens are lost when the process ends.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenCache> = Layer.effect(TokenCache, makeMemory)

/**
 * The options of `makeKeyValueStore` and `layerKeyValueStore`: an `encryptionKey`, or `allowUnencrypted: true` (one of
 * the two is required), and the prefix of the keys.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyValueStoreOptions {
  /**
   * A 256-bit key (64 hex digits, or base64) encrypting every entry with AES-256-GCM. Keep it in a secret store;
   * `generateKey` makes one. Entries written with another key are ignored (a miss), never an error.
   */
  readonly encryptionKey?: Redacted.Redacted<string> | Redacted.Redacted<Uint8Array> | undefined
  /**
   * Store tokens in plaintext when no `encryptionKey` is given. Anyone who can read the store can then use the
   * tokens until they expire: only for stores already protected as well as a secret.
   */
  readonly allowUnencrypted?: boolean | undefined
  /** Prefix of every store key, to share one store between apps (default `"effect-azure-identity-token-"`). */
  readonly prefix?: string | undefined
}

/**
 * A cache over a `KeyValueStore`. Keys are SHA-256 hashes of the cache key (credential, authority, client id,
 * tenant, sorted scopes, CAE flag), so they are safe file names and reveal nothing; values are JSON with epoch
 * milliseconds, encrypted (AES-256-GCM, a random 96-bit IV per write, the cache key as additional data) when a key is
 * configured. Entries that are expired, malformed, in the wrong mode or undecryptable are misses; store errors are
 * logged and are misses too. Without `encryptionKey` or `allowUnencrypted`, `load` and `save` fail with
 * `TokenCacheError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeKeyValueStore = (
  options: KeyValueStoreOptions = {}
): Effect.Effect<Service, never, KeyValueStore.KeyValueStore> =>
  Effect.map(KeyValueStore.KeyValueStore, (kv): Service => {
    const prefix = options.prefix ?? "effect-azure-identity-token-"
    const mode = store.modeOf(options)
    if (mode._tag === "refused") {
      const error = new TokenCacheError({ reason: mode.reason })
      return { load: () => Effect.fail(error), save: () => Effect.fail(error) }
    }
    const m = mode
    return {
      load: (key) => store.load(kv, m, prefix, key),
      save: (key, token) => store.save(kv, m, prefix, key, token)
    }
  })

/**
 * Keeps tokens in a `KeyValueStore`, e.g. `KeyValueStore.layerFileSystem(dir)` so several processes reuse tokens
 * across restarts. See `makeKeyValueStore`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerKeyValueStore = (
  options: KeyValueStoreOptions = {}
): Layer.Layer<TokenCache, never, KeyValueStore.KeyValueStore> => Layer.effect(TokenCache, makeKeyValueStore(options))

/**
 * A fresh random 256-bit key, base64: store it as a secret and pass it as `encryptionKey`.
 *
 * @since 0.1.0
 * @category encryption
 */
export const generateKey: Effect.Effect<Redacted.Redacted<string>> = Effect.sync(store.generateKey)

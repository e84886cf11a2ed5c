/**
 * Token caching and the refresh policy.
 *
 * Every credential keeps its tokens in memory, per layer instance, keyed by tenant, sorted scopes and the CAE flag
 * (a `claims` challenge bypasses the read). Concurrent callers for one key share one request. The policy:
 *
 * - before `refreshOn` → the cached token;
 * - between `refreshOn` and `expiresOn − 30 s` → the cached token at once, and one background refresh (a failed
 *   background refresh keeps the cached token, is logged, and is tried again 30 s later);
 * - after that → callers wait for one shared request; its failure reaches every waiter and is not cached.
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
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { AccessToken } from "./AccessToken.js"
import * as internal from "./internal/tokenCache.js"
import * as store from "./internal/tokenStore.js"

/**
 * @since 0.1.0
 * @category refresh
 */
export type Decision = internal.Decision

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
 * logged and count as a miss.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenCacheError extends Schema.TaggedError<TokenCacheError>("effect-azure-identity/TokenCacheError")(
  "TokenCacheError",
  { reason: Schema.String }
) {
  override get message(): string {
    return `the persistent token cache refuses to work: ${this.reason}`
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenCache extends Context.Tag("effect-azure-identity/TokenCache")<TokenCache, Service>() {}

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
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenCache> = Layer.effect(TokenCache, makeMemory)

/**
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

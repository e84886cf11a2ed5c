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
 * Provide a `TokenCache` service to persist tokens beyond the memory of one layer (see `layerKeyValueStore` when
 * available); without one, the memory cache is all there is.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { AccessToken } from "./AccessToken.js"
import * as internal from "./internal/tokenCache.js"

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
  readonly load: (key: string) => Effect.Effect<Option.Option<AccessToken>>
  readonly save: (key: string, token: AccessToken) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenCache extends Context.Tag("effect-azure-identity/TokenCache")<TokenCache, Service>() {}

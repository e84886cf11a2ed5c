/**
 * How a credential retries its HTTP requests: the `retryPolicy` option of every credential that talks HTTP (and
 * `imdsRetryPolicy` of `ManagedIdentityCredential`). Every field is optional; what is left out keeps its default
 * ({@link defaults}, or IMDS's own for `imdsRetryPolicy`).
 *
 * Retries follow a `Schedule`: delays grow `baseDelayMillis · 2^n`, capped at `maxDelayMillis`, jittered to 50–100 %
 * through `Random`; a `Retry-After` (seconds or HTTP date), `retry-after-ms` or `x-ms-retry-after-ms` header replaces
 * the computed delay. Retrying stops after `maxRetries` retries in total (whatever mix of statuses and connection
 * failures caused them), or when the next attempt would start later than `maxElapsedMillis` after the first one.
 * Each attempt (connect, send, read the body) must finish within `attemptTimeoutMillis`.
 *
 * @example
 * ```ts
 * import { ClientSecretCredential, RetryOptions } from "effect-azure-identity"
 * import { Redacted } from "effect"
 *
 * const retryPolicy: RetryOptions.RetryOptions = { maxRetries: 1, attemptTimeoutMillis: 5_000 }
 *
 * ClientSecretCredential.layer({
 *   tenantId: "contoso.onmicrosoft.com",
 *   clientId: "11111111-2222-3333-4444-555555555555",
 *   clientSecret: Redacted.make("…"),
 *   retryPolicy
 * })
 * ```
 *
 * @since 0.1.0
 */

/**
 * How a credential retries its HTTP requests (its `retryPolicy` option): attempts, backoff delays, overall and
 * per-attempt time limits, and which statuses are retried. Every field is optional; the defaults are the credential's.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryOptions {
  /** Retries after the first attempt, in total. Default 3. */
  readonly maxRetries?: number | undefined
  /** The first retry's delay before jitter. Default 1000 ms. */
  readonly baseDelayMillis?: number | undefined
  /** The longest computed delay before jitter. Default 30 000 ms. */
  readonly maxDelayMillis?: number | undefined
  /** No attempt starts later than this after the first one. Default 60 000 ms. */
  readonly maxElapsedMillis?: number | undefined
  /** Each attempt (connect, send, read the body) must finish within this. Default 20 000 ms. */
  readonly attemptTimeoutMillis?: number | undefined
  /** Which HTTP statuses are retried. Default: {@link transientStatuses}. */
  readonly retryStatus?: ((status: number) => boolean) | undefined
}

/**
 * The statuses retried by default: 408, 429, 500, 502, 503, 504.
 *
 * @since 0.1.0
 * @category constants
 */
export const transientStatuses: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])

/**
 * The defaults of the Entra token client and of managed-identity hosts other than IMDS.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: Required<{ readonly [K in keyof RetryOptions]-?: NonNullable<RetryOptions[K]> }> = {
  maxRetries: 3,
  baseDelayMillis: 1000,
  maxDelayMillis: 30_000,
  maxElapsedMillis: 60_000,
  attemptTimeoutMillis: 20_000,
  retryStatus: (status) => transientStatuses.has(status)
}

/**
 * The metrics the library records, through effect's `Metric` (export them with `@effect/opentelemetry`'s
 * `NodeSdk.layer` and a metric reader, as in docs/observability.md, or read them with `Metric.value`). None of them
 * ever holds a token, a secret or a scope: the only tags are the credential's name and the outcome.
 *
 * | metric | type | tags | what |
 * | --- | --- | --- | --- |
 * | `azure_identity.token_requests` | counter | `credential`, `outcome` | token requests sent (cache misses and refreshes); `outcome` is `success` or the error's {@link IdentityError.ReasonCode} |
 * | `azure_identity.token_request_duration_ms` | histogram | `credential` | how long each token request took, in milliseconds (from `Clock`) |
 * | `azure_identity.cached_tokens` | gauge | `credential` | tokens held in memory by the credential's cache |
 *
 * Requests are counted where a credential's token cache sends them, so a token served from memory counts nothing.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { IdentityMetrics } from "effect-azure-identity"
 *
 * const failedRequests = Effect.gen(function*() {
 *   const state = yield* Metric.value(
 *     IdentityMetrics.tokenRequests.pipe(
 *       Metric.tagged("credential", "ClientSecretCredential"),
 *       Metric.tagged("outcome", "rejected-by-authority")
 *     )
 *   )
 *   return state.count
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as IdentityError from "./IdentityError.js"

/**
 * Token requests sent, tagged `credential` and `outcome` (`success` or a {@link IdentityError.ReasonCode}).
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenRequests: Metric.Metric.Counter<number> = Metric.counter("azure_identity.token_requests", {
  description: "Token requests sent by effect-azure-identity credentials, by credential and outcome",
  incremental: true
})

/**
 * Token request latency in milliseconds, tagged `credential`. Buckets from 5 ms to about 20 s.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenRequestDuration = Metric.histogram(
  "azure_identity.token_request_duration_ms",
  MetricBoundaries.exponential({ start: 5, factor: 2, count: 13 }),
  "Token request latency in milliseconds, by credential"
)

/**
 * Tokens held in memory by credential caches, tagged `credential`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const cachedTokens: Metric.Metric.Gauge<number> = Metric.gauge("azure_identity.cached_tokens", {
  description: "Tokens held in memory by effect-azure-identity credential caches, by credential"
})

/**
 * The `outcome` tag of a failed request: the error's reason code when it has one.
 *
 * @since 0.1.0
 * @category metrics
 */
export const outcomeOf = (error: unknown): IdentityError.ReasonCode | "failure" =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code as IdentityError.ReasonCode
    : "failure"

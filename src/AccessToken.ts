/**
 * An access token as every credential returns it.
 *
 * The token itself is `Redacted`: it prints as `<redacted>` in logs, errors and JSON, and is unwrapped with
 * `Redacted.value` only where it goes into an `Authorization` header.
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import type * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as internal from "./internal/accessToken.js"

/**
 * A token a credential returned: the secret `token` (redacted: printing or logging the object never shows it), when it
 * expires, when the library refreshes it, and its type. Send it as `Authorization: <tokenType> <token>`, or let
 * `BearerToken` do that.
 *
 * @since 0.1.0
 * @category models
 */
export interface AccessToken {
  readonly token: Redacted.Redacted<string>
  readonly expiresOn: DateTime.Utc
  /** When the library starts refreshing this token in the background. */
  readonly refreshOn: Option.Option<DateTime.Utc>
  /** `"Bearer"` unless the service says otherwise. */
  readonly tokenType: string
  /**
   * The credential that produced the token, e.g. `AzureCliCredential`: set by `ChainedTokenCredential` (and so
   * `DefaultAzureCredential`) to the link that won, and by `TestCredential`. For diagnostics only.
   *
   * @since 0.1.0
   */
  readonly credential?: string | undefined
}

/**
 * Five minutes: tokens that live less than two hours are refreshed this long before they expire.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRefreshMarginMillis = 5 * 60 * 1000

/**
 * Two hours: tokens that live at least this long are refreshed at half their lifetime.
 *
 * @since 0.1.0
 * @category constants
 */
export const halfLifeThresholdMillis = 2 * 60 * 60 * 1000

/**
 * When to start refreshing a token obtained at `obtainedAtMillis` that expires at `expiresOnMillis`:
 * `refreshInMillis` from the server when given; else half the lifetime for tokens living ≥ 2 h; else five minutes
 * before expiry, but never earlier than half the lifetime (so a 4-minute token is not refreshed on every call).
 *
 * @since 0.1.0
 * @category refresh
 */
export const computeRefreshOnMillis = (
  obtainedAtMillis: number,
  expiresOnMillis: number,
  refreshInMillis?: number
): number => {
  const lifetime = Math.max(0, expiresOnMillis - obtainedAtMillis)
  if (refreshInMillis !== undefined && refreshInMillis > 0) {
    return Math.min(obtainedAtMillis + refreshInMillis, expiresOnMillis)
  }
  if (lifetime >= halfLifeThresholdMillis) return obtainedAtMillis + Math.floor(lifetime / 2)
  return Math.max(expiresOnMillis - defaultRefreshMarginMillis, obtainedAtMillis + Math.floor(lifetime / 2))
}

/**
 * `millis` as the instant `DateTime.unsafeMake(millis)` would hold (a `Date`'s time value: whole milliseconds, at
 * most 8.64e15 from the epoch either way), without building one (a `DateTime` costs about 1 µs); anything else
 * throws what `DateTime.unsafeMake` throws.
 */
const epochMillis = (millis: number): number => {
  if (!(Math.abs(millis) <= maxTimeValue)) return DateTime.toEpochMillis(DateTime.unsafeMake(millis))
  const whole = Math.trunc(millis)
  return whole === 0 ? 0 : whole
}
const maxTimeValue = 8.64e15

/**
 * Builds an `AccessToken` from epoch milliseconds, computing `refreshOn` with {@link computeRefreshOnMillis}.
 *
 * The token keeps the two instants as numbers: `expiresOn` and `refreshOn` are enumerable properties computed when
 * read (a cached token is smaller by two `DateTime`s and an `Option`). They read, spread, compare and serialise like
 * plain properties; two reads give equal `DateTime`s (`Equal.equals`), not the same object.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly token: string | Redacted.Redacted<string>
  readonly obtainedAtMillis: number
  readonly expiresOnMillis: number
  readonly refreshInMillis?: number | undefined
  readonly tokenType?: string | undefined
}): AccessToken =>
  internal.make(
    Redacted.isRedacted(options.token) ? options.token : Redacted.make(options.token),
    epochMillis(options.expiresOnMillis),
    epochMillis(computeRefreshOnMillis(options.obtainedAtMillis, options.expiresOnMillis, options.refreshInMillis)),
    options.tokenType === undefined || options.tokenType === "" ? "Bearer" : options.tokenType
  )

/**
 * `getBearerTokenProvider`: a `() => Promise<string>` over any `@azure/core-auth` `TokenCredential`, with the
 * refresh rules of the Azure SDK's bearer-token policy (its token cycler):
 *
 * - the token is kept per provider and returned as is until `refreshAfterTimestamp`, or 2 minutes before it expires;
 * - from then until 1 second before expiry the kept token is returned at once and one refresh runs in the
 *   background (a failed one is ignored and retried at most every 3 seconds);
 * - within 1 second of expiry (or with no token) callers wait for one shared request, whose failure reaches them all
 *   and is not kept.
 *
 * Time comes from the `Clock` of the given runtime (`Runtime.defaultRuntime` by default), so tests drive it with
 * `TestClock`.
 *
 * @internal
 */
import type * as CoreAuth from "@azure/core-auth"
import * as Clock from "effect/Clock"
import * as Runtime from "effect/Runtime"
import type { BearerTokenProviderOptions } from "../AzureSdk.js"

/** @internal */
export const refreshWindowMillis = 2 * 60 * 1000
/** @internal */
export const retryIntervalMillis = 3000
/** @internal */
export const forcedRefreshMillis = 1000

/** @internal */
export const make = (
  credential: CoreAuth.TokenCredential,
  scopes: string | ReadonlyArray<string>,
  options: BearerTokenProviderOptions = {}
): () => Promise<string> => {
  const runtime = options.runtime ?? Runtime.defaultRuntime
  const now = () => Runtime.runSync(runtime)(Clock.currentTimeMillis)
  const list = typeof scopes === "string" ? scopes : [...scopes]
  const getTokenOptions: CoreAuth.GetTokenOptions = {
    enableCae: options.enableCae ?? true,
    ...(options.abortSignal === undefined ? {} : { abortSignal: options.abortSignal })
  }
  let kept: CoreAuth.AccessToken | undefined
  let inFlight: Promise<CoreAuth.AccessToken> | undefined
  let lastAttempt = Number.NEGATIVE_INFINITY

  const request = (): Promise<CoreAuth.AccessToken> => {
    if (inFlight !== undefined) return inFlight
    lastAttempt = now()
    const attempt = Promise.resolve()
      .then(() => credential.getToken(list, getTokenOptions))
      .then((token) => {
        if (token === null || typeof token.token !== "string" || token.token === "") {
          throw new Error("Failed to get access token")
        }
        kept = token
        return token
      })
      .finally(() => {
        if (inFlight === attempt) inFlight = undefined
      })
    inFlight = attempt
    return attempt
  }

  return async () => {
    const t = now()
    const token = kept
    if (token !== undefined && t < token.expiresOnTimestamp - forcedRefreshMillis) {
      const refreshAt = Math.min(
        token.refreshAfterTimestamp ?? Number.POSITIVE_INFINITY,
        token.expiresOnTimestamp - refreshWindowMillis
      )
      if (t >= refreshAt && inFlight === undefined && t - lastAttempt >= retryIntervalMillis) {
        // a background refresh: its failure is ignored, the kept token is still valid
        request().catch(() => undefined)
      }
      return token.token
    }
    return (await request()).token
  }
}

import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as IdentityMetrics from "../IdentityMetrics.js"

/** The metrics of one credential's token cache. @internal */
export interface CacheMetrics {
  /** Counts the request by outcome and times it (with `Clock`). */
  readonly measured: <A, E, R>(request: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Moves the cached-tokens gauge by `delta`. */
  readonly cachedDelta: (delta: number) => void
  /** Takes this cache's tokens off the gauge (its scope closed). */
  readonly release: Effect.Effect<void>
}

/**
 * Metrics tagged with the credential's name only: never a cache key (which holds scopes) nor a token.
 *
 * @internal
 */
export const forCache = (credential: string): CacheMetrics => {
  const requests = Metric.tagged(IdentityMetrics.tokenRequests, "credential", credential)
  const duration = Metric.tagged(IdentityMetrics.tokenRequestDuration, "credential", credential)
  const cached = Metric.tagged(IdentityMetrics.cachedTokens, "credential", credential)
  let cachedCount = 0
  const cachedDelta = (delta: number) => {
    if (delta === 0) return
    cachedCount += delta
    cached.unsafeModify(delta, [])
  }
  const outcome = <A, E>(exit: Exit.Exit<A, E>): string =>
    Exit.isSuccess(exit)
      ? "success"
      : Option.match(Cause.failureOption(exit.cause), {
        onNone: () => Exit.isInterrupted(exit) ? "interrupted" : "defect",
        onSome: IdentityMetrics.outcomeOf
      })
  // one tagged counter per outcome, made once (tagging builds a new metric key every time)
  const byOutcome = new Map<string, Metric.Metric.Counter<number>>()
  const requestsFor = (name: string) => {
    let counter = byOutcome.get(name)
    if (counter === undefined) {
      counter = Metric.tagged(requests, "outcome", name)
      byOutcome.set(name, counter)
    }
    return counter
  }
  const measured = <A, E, R>(request: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(
      Effect.timed(Effect.exit(request)),
      ([elapsed, exit]) =>
        Metric.update(duration, Duration.toMillis(elapsed)).pipe(
          Effect.zipRight(Metric.increment(requestsFor(outcome(exit)))),
          Effect.zipRight(exit)
        )
    )
  return { measured, cachedDelta, release: Effect.sync(() => cachedDelta(-cachedCount)) }
}

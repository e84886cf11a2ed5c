import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as IdentityMetrics from "../IdentityMetrics.js"

/** The metrics of one credential's token cache. @internal */
export interface CacheMetrics {
  /** Counts the request by outcome and times it (with `Clock`). */
  readonly measured: <A, E, R>(request: Effect.Effect<A, E, R>, startedAtMillis?: number) => Effect.Effect<A, E, R>
  /**
   * Counts a request that succeeded without a fiber, taking `millis`; `labels` are the metric labels of the fiber
   * that started it (what `Metric.update` would add).
   */
  readonly succeeded: (millis: number, labels: ReadonlyArray<MetricLabel.MetricLabel>) => void
  /** Moves the cached-tokens gauge by `delta`. */
  readonly cachedDelta: (delta: number) => void
  /** Takes this cache's tokens off the gauge (its scope closed). */
  readonly release: Effect.Effect<void>
}

/**
 * `base` tagged with `labels`, like `Metric.tagged`, but with one tag array reused for every update. (`Metric.tagged`
 * joins its tags with the fiber's on every update: a new array each time, so a new metric key is built and hashed
 * to find the metric in the registry, about as costly as the rest of the bookkeeping of a token request.) The
 * metric's key is the same: the name, then `labels` in order, then the fiber's own metric labels.
 */
const tagged = <Type, In, Out>(
  base: Metric.Metric<Type, In, Out>,
  labels: ReadonlyArray<MetricLabel.MetricLabel>
): Metric.Metric<Type, In, Out> => {
  const joined = new WeakMap<ReadonlyArray<MetricLabel.MetricLabel>, ReadonlyArray<MetricLabel.MetricLabel>>()
  const tags = (extra: ReadonlyArray<MetricLabel.MetricLabel>) => {
    if (extra.length === 0) return labels
    let all = joined.get(extra)
    if (all === undefined) {
      all = [
        ...labels,
        ...extra.filter((label) => !labels.some((own) => own.key === label.key && own.value === label.value))
      ]
      joined.set(extra, all)
    }
    return all
  }
  return Metric.make(
    base.keyType,
    (input, extra) => base.unsafeUpdate(input, tags(extra)),
    (extra) => base.unsafeValue(tags(extra)),
    (input, extra) => base.unsafeModify(input, tags(extra))
  )
}

/**
 * Metrics tagged with the credential's name only: never a cache key (which holds scopes) nor a token.
 *
 * @internal
 */
export const forCache = (credential: string): CacheMetrics => {
  const label = MetricLabel.make("credential", credential)
  const duration = tagged(IdentityMetrics.tokenRequestDuration, [label])
  const cached = tagged(IdentityMetrics.cachedTokens, [label])
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
      counter = tagged(IdentityMetrics.tokenRequests, [label, MetricLabel.make("outcome", name)])
      byOutcome.set(name, counter)
    }
    return counter
  }
  const measured = <A, E, R>(request: Effect.Effect<A, E, R>, startedAtMillis?: number): Effect.Effect<A, E, R> =>
    startedAtMillis === undefined
      ? Effect.flatMap(
        Effect.timed(Effect.exit(request)),
        ([elapsed, exit]) => record(Duration.toMillis(elapsed), exit)
      )
      : Effect.flatMap(
        Effect.exit(request),
        (exit) => Effect.flatMap(Clock.currentTimeMillis, (now) => record(now - startedAtMillis, exit))
      )
  const record = <A, E>(millis: number, exit: Exit.Exit<A, E>): Effect.Effect<A, E> =>
    Metric.update(duration, millis).pipe(
      Effect.zipRight(Metric.increment(requestsFor(outcome(exit)))),
      Effect.zipRight(exit)
    )
  const succeeded = (millis: number, labels: ReadonlyArray<MetricLabel.MetricLabel>) => {
    duration.unsafeUpdate(millis, labels)
    requestsFor("success").unsafeUpdate(1, labels)
  }
  return { measured, succeeded, cachedDelta, release: Effect.sync(() => cachedDelta(-cachedCount)) }
}

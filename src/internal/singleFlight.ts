/**
 * Single flight: concurrent callers of one request share one run of it. Used by the token cache engine (one slot per
 * cache key), the IMDS probe and the initial grant of the user credentials.
 *
 * - Registering the request and forking it are one uninterruptible step: an interruption can never leave a slot
 *   pointing at a request that nobody runs.
 * - The request runs in a fiber of the given `Scope` (the layer's): an interrupted caller only stops waiting, the
 *   others still get the result; closing the scope interrupts the request and every waiter sees that.
 * - Waiting is `Fiber.await` on that fiber, so a fiber stopped before it even started (its scope already closed) still
 *   releases its waiters.
 * - A finished request may be held for a while (`holdMillis`): callers in that time get its exit without a new run
 *   (a non-retryable failure is not asked for again at every call).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

/**
 * Where a request in flight is kept. Any object with these two fields (a cache entry) can be a slot, so keeping one
 * costs no extra object.
 *
 * @internal
 */
export interface Slot<A, E> {
  /** The request in flight, or a finished one whose exit is held until `until`. */
  flight: Fiber.Fiber<A, E> | undefined
  /**
   * While a request runs: `Infinity`. After it: until when (epoch ms, fiber clock) its exit is held. The owner of the
   * slot may use the field for its own timing while `flight` is `undefined`.
   */
  until: number
}

/** @internal */
export interface Options<A, E> {
  /** The scope the request runs in (the layer's): closing it interrupts the request. */
  readonly scope: Scope.Scope
  /** Runs in the request's fiber when it ends, before any waiter resumes (after the slot is updated). */
  readonly onExit?: ((exit: Exit.Exit<A, E>, nowMillis: number) => Effect.Effect<void>) | undefined
  /** How long to keep answering with this exit instead of starting a new request (default: 0, not held). */
  readonly holdMillis?: ((exit: Exit.Exit<A, E>) => number) | undefined
}

/** A fresh, empty slot. @internal */
export const makeSlot = <A, E>(): Slot<A, E> => ({ flight: undefined, until: 0 })

/**
 * The request callers join at `nowMillis`: the one running, or a finished one still held. `undefined` when a new
 * request would start.
 *
 * @internal
 */
export const current = <A, E>(slot: Slot<A, E>, nowMillis: number): Fiber.Fiber<A, E> | undefined =>
  slot.flight !== undefined && nowMillis < slot.until ? slot.flight : undefined

/** Whether a request runs for the slot now (a held exit does not count). @internal */
export const running = <A, E>(slot: Slot<A, E>): boolean => slot.flight !== undefined && slot.until === Infinity

const settle = <A, E>(slot: Slot<A, E>, fiber: Fiber.Fiber<A, E>, exit: Exit.Exit<A, E>, hold: number, now: number) => {
  if (slot.flight !== fiber) return
  if (hold > 0) {
    slot.flight = Fiber.done(exit)
    slot.until = now + hold
  } else {
    slot.flight = undefined
    slot.until = 0
  }
}

/**
 * The request of the slot: the current one, or `effect` started now in a fiber of `options.scope`. Uninterruptible
 * and without waiting: registration and fork cannot be separated by an interruption.
 *
 * @internal
 */
export const start = <A, E>(
  slot: Slot<A, E>,
  effect: Effect.Effect<A, E>,
  options: Options<A, E>
): Effect.Effect<Fiber.Fiber<A, E>> =>
  Effect.uninterruptible(Effect.clockWith((clock) => {
    const joined = current(slot, clock.unsafeCurrentTimeMillis())
    if (joined !== undefined) return Effect.succeed(joined)
    // `interruptible`: forked from an uninterruptible region, whose flags the child would inherit; the request itself
    // must stay interruptible (timeouts, closing the scope).
    const run = Effect.interruptible(effect).pipe(
      Effect.onExit((exit) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.suspend(() => {
            if (fiber !== undefined) settle(slot, fiber, exit, options.holdMillis?.(exit) ?? 0, now)
            return options.onExit?.(exit, now) ?? Effect.void
          }))
      )
    )
    let fiber: Fiber.RuntimeFiber<A, E> | undefined
    // its waiters handle its failure: not an "unhandled error" for the debug log (the fiber inherits the level)
    return Effect.map(Effect.withUnhandledErrorLogLevel(Effect.forkIn(run, options.scope), Option.none()), (forked) => {
      fiber = forked
      slot.flight = forked
      slot.until = Infinity
      // a fiber stopped before it started (its scope is closed) runs no `onExit`: free the slot anyway
      forked.addObserver(() => {
        if (slot.flight === forked) {
          slot.flight = undefined
          slot.until = 0
        }
      })
      return forked
    })
  }))

/** Waits for a request; interrupting the waiter never interrupts the request. @internal */
export const wait = <A, E>(fiber: Fiber.Fiber<A, E>): Effect.Effect<A, E> => Effect.flatten(Fiber.await(fiber))

/**
 * Joins the request of the slot, or starts `effect` and waits for it.
 *
 * @internal
 */
export const join = <A, E>(
  slot: Slot<A, E>,
  effect: Effect.Effect<A, E>,
  options: Options<A, E>
): Effect.Effect<A, E> => Effect.flatMap(start(slot, effect, options), wait)

/** @internal */
export interface SingleFlight<A, E> {
  /** Joins the request in flight, or starts `effect` as the new one, and waits for it. */
  readonly run: (effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Whether a request runs now. */
  readonly running: () => boolean
}

/**
 * One unkeyed single flight. With `cancelWhenAbandoned`, the request is interrupted as soon as every caller waiting
 * for it has been interrupted (and the next caller starts a new one).
 *
 * @internal
 */
export const make = <A, E>(
  options: Options<A, E> & { readonly cancelWhenAbandoned?: boolean | undefined }
): SingleFlight<A, E> => {
  const slot = makeSlot<A, E>()
  let waiters = 0
  const run = (effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(start(slot, effect, options), (fiber) => {
        waiters++
        return restore(wait(fiber)).pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              waiters--
              if (
                options.cancelWhenAbandoned === true && waiters === 0 &&
                Fiber.isRuntimeFiber(fiber) && slot.flight === fiber && Exit.isInterrupted(exit)
              ) {
                slot.flight = undefined
                slot.until = 0
                return Fiber.interruptFork(fiber)
              }
              return Effect.void
            })
          )
        )
      })
    )
  return { run, running: () => running(slot) }
}

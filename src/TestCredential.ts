/**
 * A `TokenCredential` for your own tests: fixed or scripted tokens and failures, every call counted and recorded.
 *
 * - `token` (default `"test-token"`) and `expiresIn` (default one hour) describe the token of every call.
 * - `outcomes` scripts the calls in order: each is a token value, a {@link token} with its own lifetime, or an
 *   `IdentityError` to fail with; once the script is used up, its last outcome repeats.
 * - `respond` decides per call from the scopes and options asked (it may be an `Effect`).
 *
 * Tokens expire relative to the `Clock`: under `TestClock`, a token obtained at time `t` with `expiresIn: "5 minutes"`
 * has `expiresOn` `t + 5 min`, so code that checks expiry sees it as the clock moves. There is no cache: each
 * `getToken` is one call, so the count is the number of times your code asked.
 *
 * The layer provides `TokenCredential` and {@link TestCredential} (the recorder: `calls`, `count`, `clear`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { IdentityError, TestCredential, TokenCredential } from "effect-azure-identity"
 *
 * const program = Effect.gen(function*() {
 *   const first = yield* TokenCredential.getToken("https://vault.azure.net/.default")
 *   const second = yield* Effect.either(TokenCredential.getToken("https://vault.azure.net/.default"))
 *   const calls = yield* TestCredential.calls
 *   return { first: first.credential, secondFailed: second._tag === "Left", asked: calls.map((c) => c.scopes) }
 * }).pipe(
 *   Effect.provide(TestCredential.layer({
 *     outcomes: [
 *       "token-1",
 *       new IdentityError.CredentialUnavailableError({
 *         credential: "TestCredential",
 *         reason: "scripted failure",
 *         code: "endpoint-unreachable"
 *       })
 *     ]
 *   }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AccessToken from "./AccessToken.js"
import type { IdentityError } from "./IdentityError.js"
import { isIdentityError } from "./IdentityError.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * A scripted token: its value and lifetime.
 *
 * @since 0.1.0
 * @category models
 */
export interface Token {
  readonly _tag: "TestToken"
  readonly value: string
  readonly expiresIn: Duration.DurationInput | undefined
}

/**
 * A scripted token with this value and lifetime, for `outcomes` or `respond`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const token = (value: string, expiresIn?: Duration.DurationInput): Token => ({
  _tag: "TestToken",
  value,
  expiresIn
})

/**
 * One call's outcome: a token value, a {@link Token}, or an error to fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = string | Token | IdentityError

/**
 * One `getToken` call as the credential received it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call {
  readonly scopes: ReadonlyArray<string>
  readonly options: TokenCredential.GetTokenOptions | undefined
  /** When the call was made, from `Clock`. */
  readonly at: DateTime.Utc
}

/**
 * The options of `make` and `layer`, all optional: the credential's name, the token it returns by default and its
 * lifetime, or the outcome of each call (`outcomes` in order, or `respond` per call).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The credential's name (in errors, spans and `AccessToken.credential`). Default `TestCredential`. */
  readonly name?: string | undefined
  /** The token of every call when neither `outcomes` nor `respond` is given. Default `test-token`. */
  readonly token?: string | undefined
  /** The lifetime of tokens given as a string. Default one hour. */
  readonly expiresIn?: Duration.DurationInput | undefined
  /** The outcomes of the calls, in order; the last repeats. */
  readonly outcomes?: ReadonlyArray<Outcome> | undefined
  /** The outcome of a call, from what it asked; wins over `outcomes`. */
  readonly respond?: ((call: Call, index: number) => Outcome | Effect.Effect<Outcome>) | undefined
}

/**
 * The recorder of a test credential.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Every call so far, in order. */
  readonly calls: Effect.Effect<ReadonlyArray<Call>>
  /** How many calls so far. */
  readonly count: Effect.Effect<number>
  /** Forgets the calls so far (the script of `outcomes` goes on where it was). */
  readonly clear: Effect.Effect<void>
}

/**
 * The recorder of a test credential: read the calls made to `getToken`, or forget them. Provided by `layer` beside
 * `TokenCredential`.
 *
 * @since 0.1.0
 * @category tags
 */
export class TestCredential extends Context.Tag("effect-azure-identity/TestCredential")<TestCredential, Service>() {}

/**
 * A test credential and its recorder.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<{
  readonly credential: TokenCredential.Service
  readonly recorder: Service
}> =>
  Effect.sync(() => {
    const name = options.name ?? "TestCredential"
    const defaultLifetime = options.expiresIn ?? Duration.hours(1)
    const calls: Array<Call> = []
    let index = 0

    const scripted = (i: number): Outcome => {
      const outcomes = options.outcomes
      if (outcomes === undefined || outcomes.length === 0) return options.token ?? "test-token"
      return outcomes[Math.min(i, outcomes.length - 1)]!
    }

    const toToken = (outcome: string | Token, nowMillis: number): AccessToken.AccessToken => {
      const { expiresIn, value } = typeof outcome === "string"
        ? { value: outcome, expiresIn: defaultLifetime }
        : { value: outcome.value, expiresIn: outcome.expiresIn ?? defaultLifetime }
      return {
        ...AccessToken.make({
          token: Redacted.make(value),
          obtainedAtMillis: nowMillis,
          expiresOnMillis: nowMillis + Duration.toMillis(expiresIn)
        }),
        credential: name
      }
    }

    const getToken: TokenCredential.Service["getToken"] = (scopes, getTokenOptions) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const call: Call = {
          scopes: typeof scopes === "string" ? [scopes] : scopes.slice(),
          options: getTokenOptions,
          at: DateTime.unsafeMake(now)
        }
        calls.push(call)
        const i = index++
        const decided = options.respond !== undefined ? options.respond(call, i) : scripted(i)
        return Effect.flatMap(
          Effect.isEffect(decided) ? decided : Effect.succeed(decided),
          (outcome): Effect.Effect<AccessToken.AccessToken, IdentityError> =>
            isIdentityError(outcome) ? Effect.fail(outcome) : Effect.succeed(toToken(outcome, now))
        )
      }).pipe(
        Effect.withSpan(`${name}.getToken`, {
          attributes: {
            "azure.identity.credential": name,
            "azure.identity.scopes": typeof scopes === "string" ? scopes : scopes.join(" ")
          }
        })
      )

    return {
      credential: TokenCredential.make(name, getToken),
      recorder: {
        calls: Effect.sync(() => calls.slice()),
        count: Effect.sync(() => calls.length),
        clear: Effect.sync(() => {
          calls.length = 0
        })
      }
    }
  })

/**
 * Provides `TokenCredential` and its {@link TestCredential} recorder; each build of the layer starts afresh.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<TokenCredential.TokenCredential | TestCredential> =>
  Layer.effectContext(
    Effect.map(
      make(options),
      ({ credential, recorder }) =>
        Context.make(TokenCredential.TokenCredential, credential).pipe(Context.add(TestCredential, recorder))
    )
  )

/**
 * The calls received by the {@link TestCredential} in the context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const calls: Effect.Effect<ReadonlyArray<Call>, never, TestCredential> = Effect.flatMap(
  TestCredential,
  (service) => service.calls
)

/**
 * How many calls the {@link TestCredential} in the context received.
 *
 * @since 0.1.0
 * @category accessors
 */
export const count: Effect.Effect<number, never, TestCredential> = Effect.flatMap(
  TestCredential,
  (service) => service.count
)

/**
 * Tries several credentials in order and returns the first token.
 *
 * - A link failing with `CredentialUnavailableError` (not configured, tool or endpoint absent) or
 *   `AuthenticationRequiredError` (a user must sign in) passes the request to the next link.
 * - Any other error — typically `ClientAuthenticationError`: the authority answered and said no, e.g. a wrong client
 *   secret — stops the chain at once. A credential that is configured but broken never silently falls through to
 *   another identity.
 * - When no link produced a token, `getToken` fails with one `ChainedAuthenticationError` whose `errors` hold each
 *   link's error in chain order, and whose message lists every link tried: its name, whether it was unavailable or
 *   failed, and why.
 * - A link that is itself a chain contributes its own links' errors to the list.
 *
 * Each link runs knowing it is in a chain: a `ManagedIdentityCredential` link probes IMDS first (1 s) and does not
 * retry connection failures, so a chain outside Azure moves on at once (see its `probe` option).
 *
 * Reads no environment variables itself; each link reads its own. Each link layer is built once, when the chain's
 * layer is built, so each keeps its own token cache.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import {
 *   AzureCliCredential, ChainedTokenCredential, ClientSecretCredential, TokenCredential
 * } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = ChainedTokenCredential.layer(
 *   ClientSecretCredential.layerConfig(),
 *   AzureCliCredential.layer()
 * ).pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://vault.azure.net/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as Array from "effect/Array"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { AccessToken } from "./AccessToken.js"
import type { IdentityError, LinkError } from "./IdentityError.js"
import { ChainedAuthenticationError, isChainContinuable } from "./IdentityError.js"
import { asLink } from "./internal/chainContext.js"
import * as Peek from "./internal/peek.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The chain's default name, `"ChainedTokenCredential"`: the `credential` of its errors and the `name` of its service
 * when the `name` option is not given.
 *
 * @since 0.1.0
 * @category names
 */
export const name = "ChainedTokenCredential"

/**
 * The options of `makeWith` and `layerWith`, both optional: a name for errors and spans, and whether to remember the
 * winning link.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The name the chain reports in its errors and spans. Defaults to `ChainedTokenCredential`. */
  readonly name?: string | undefined
  /**
   * Remember the link that produced the last token and start there next time. If that link later fails with a
   * continuable error, the other links are tried in chain order (and a new winner is remembered). A remembered link
   * that fails with any other error still stops the chain. Defaults to `false`: every call walks the chain from the
   * top.
   */
  readonly rememberWinner?: boolean | undefined
}

type Attempt =
  | { readonly _tag: "Token"; readonly token: AccessToken }
  | { readonly _tag: "Stop" }

/** The marker a link fails with inside `firstSuccessOf` so that the next link runs. */
const Continue = Symbol.for("effect-azure-identity/ChainedTokenCredential/Continue")

/**
 * The errors a link failure contributes to the chain's list, and whether the chain may go on. A nested chain's
 * error is flattened into its links' errors.
 */
const classify = (error: IdentityError): { readonly errors: ReadonlyArray<LinkError>; readonly continuable: boolean } =>
  error._tag === "ChainedAuthenticationError"
    ? { errors: error.errors, continuable: error.errors.every(isChainContinuable) }
    : { errors: [error], continuable: isChainContinuable(error) }

/**
 * A chain over services that are already built, with options.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (
  links: Array.NonEmptyReadonlyArray<TokenCredential.Service>,
  options: Options = {}
): TokenCredential.Service => {
  const chainName = options.name ?? name
  const remember = options.rememberWinner === true
  let winner: number | undefined = undefined

  const getToken = (
    scopes: string | ReadonlyArray<string>,
    getTokenOptions?: TokenCredential.GetTokenOptions
  ): Effect.Effect<AccessToken, IdentityError> =>
    Effect.suspend(() => {
      const failures: Array<{ readonly index: number; readonly errors: ReadonlyArray<LinkError> }> = []
      const start = remember ? winner : undefined
      const order = links.map((_, i) => i)
      if (start !== undefined) order.sort((a, b) => (a === start ? -1 : b === start ? 1 : a - b))

      const attempt = (index: number): Effect.Effect<Attempt, typeof Continue> => {
        const link = links[index]!
        // links know they are in a chain: a managed identity then gives up on an absent IMDS at once
        // a link's failure is handled here: fibers it forks (its token request) must not log it as unhandled
        const linkToken = Effect.withUnhandledErrorLogLevel(
          asLink(link.getToken(scopes, getTokenOptions)),
          Option.none()
        )
        return Effect.timed(Effect.either(linkToken)).pipe(
          Effect.flatMap(([elapsed, result]): Effect.Effect<Attempt, typeof Continue> => {
            const took = `${Math.round(Duration.toMillis(elapsed))} ms`
            if (result._tag === "Right") {
              if (remember) winner = index
              return Effect.logDebug(`${chainName}: ${link.name} returned a token (${took})`).pipe(
                Effect.annotateLogs("credential", link.name),
                Effect.as<Attempt>({
                  _tag: "Token",
                  token: result.right.credential === undefined
                    ? { ...result.right, credential: link.name }
                    : result.right
                })
              )
            }
            const { continuable, errors } = classify(result.left)
            failures.push({ index, errors })
            if (remember && winner === index) winner = undefined
            return Effect.logDebug(
              `${chainName}: ${link.name} ${
                continuable ? "is unavailable, trying the next link" : "failed, stopping the chain"
              } (${took})`
            ).pipe(
              Effect.annotateLogs("credential", link.name),
              Effect.zipRight(continuable ? Effect.fail(Continue) : Effect.succeed<Attempt>({ _tag: "Stop" }))
            )
          })
        )
      }

      const aggregate = Effect.suspend(() =>
        Effect.fail(
          new ChainedAuthenticationError({
            credential: chainName,
            errors: failures.slice().sort((a, b) => a.index - b.index).flatMap((f) => f.errors)
          })
        )
      )

      // each link's getToken is called only when its turn comes: an unavailable link builds its error when called
      return Effect.firstSuccessOf(order.map((index) => Effect.suspend(() => attempt(index)))).pipe(
        Effect.matchEffect({
          onFailure: () => aggregate,
          onSuccess: (result) => (result._tag === "Token" ? Effect.succeed(result.token) : aggregate)
        })
      )
    }).pipe(
      Effect.withSpan(`${chainName}.getToken`, {
        attributes: {
          "azure.identity.credential": chainName,
          "azure.identity.scopes": typeof scopes === "string" ? scopes : scopes.join(" ")
        }
      })
    )

  // The link the chain would ask first (the remembered winner, else the first link) answers from its cache when it
  // can; anything else (no token there, another link's turn) goes through `getToken`.
  const firstLink = () => links[remember && winner !== undefined ? winner : 0]!
  // (the Azure SDK adapter reads only the token and its expiry: its peek returns the link's token as it is)
  const peek: Peek.Peek = (scopes, getTokenOptions, nowMillis) =>
    Peek.of(firstLink())?.(scopes, getTokenOptions, nowMillis)
  // In a fiber too: a token the first link holds fresh is returned at once, without walking the chain (no span, no
  // timing, no log: a cached token is the hot path of a service), named after its link as the walk names it;
  // everything else walks the chain.
  const fastGetToken = (
    scopes: string | ReadonlyArray<string>,
    getTokenOptions?: TokenCredential.GetTokenOptions
  ): Effect.Effect<AccessToken, IdentityError> =>
    Effect.clockWith((clock) => {
      const first = firstLink()
      const token = Peek.of(first)?.(scopes, getTokenOptions, clock.unsafeCurrentTimeMillis())
      if (token === undefined) return getToken(scopes, getTokenOptions)
      return Effect.succeed(token.credential === undefined ? { ...token, credential: first.name } : token)
    })
  return Peek.register(TokenCredential.make(chainName, fastGetToken), peek)
}

/**
 * A chain over services that are already built: links are tried in the order given.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  ...links: Array.NonEmptyReadonlyArray<TokenCredential.Service>
): TokenCredential.Service => makeWith(links)

/**
 * Builds each credential layer once, in the current scope and memo map (so a layer object also provided elsewhere
 * in the application is shared, not built twice), and returns their services in order.
 *
 * @since 0.1.0
 * @category constructors
 */
export const buildLinks = <
  const Links extends Array.NonEmptyReadonlyArray<Layer.Layer<TokenCredential.TokenCredential, any, any>>
>(
  links: Links
): Effect.Effect<
  Array.NonEmptyReadonlyArray<TokenCredential.Service>,
  Layer.Layer.Error<Links[number]>,
  Layer.Layer.Context<Links[number]> | Scope.Scope
> =>
  Effect.gen(function*() {
    const memoMap = yield* Layer.CurrentMemoMap
    const scope = yield* Effect.scope
    const services: Array<TokenCredential.Service> = []
    for (const link of links) {
      const context = yield* Layer.buildWithMemoMap(link, memoMap, scope)
      services.push(Context.get(context, TokenCredential.TokenCredential))
    }
    return services as unknown as Array.NonEmptyReadonlyArray<TokenCredential.Service>
  })

/**
 * A chain of credential layers, tried in the order given. Each link layer is built once, with the chain's layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <
  const Links extends Array.NonEmptyReadonlyArray<Layer.Layer<TokenCredential.TokenCredential, any, any>>
>(
  ...links: Links
): Layer.Layer<
  TokenCredential.TokenCredential,
  Layer.Layer.Error<Links[number]>,
  Layer.Layer.Context<Links[number]>
> => Layer.scoped(TokenCredential.TokenCredential, Effect.map(buildLinks(links), (services) => makeWith(services)))

/**
 * Like {@link layer}, with options (a name for errors and spans; remembering the winning link).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = <
  const Links extends Array.NonEmptyReadonlyArray<Layer.Layer<TokenCredential.TokenCredential, any, any>>
>(
  options: Options,
  ...links: Links
): Layer.Layer<
  TokenCredential.TokenCredential,
  Layer.Layer.Error<Links[number]>,
  Layer.Layer.Context<Links[number]>
> =>
  Layer.scoped(
    TokenCredential.TokenCredential,
    Effect.map(buildLinks(links), (services) => makeWith(services, options))
  )

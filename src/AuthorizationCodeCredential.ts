/**
 * Signs a user in with an authorization code obtained elsewhere (a web app's redirect from
 * `{authorityHost}/{tenantId}/oauth2/v2.0/authorize`), then keeps the user signed in with the refresh token.
 *
 * - The first `getToken` redeems the code (`grant_type=authorization_code`, `code`, `redirect_uri`, `scope` plus
 *   `openid profile offline_access`, `client_info=1`, `client_id`, and `client_secret` whenever configured).
 * - A code is single-use: concurrent first callers share one redemption, and it is never sent twice, even after a
 *   failure. Later calls: cached access tokens (per tenant, scopes and CAE flag), else the refresh token (kept as
 *   `Redacted`; a rotated one replaces the old one; `invalid_grant` drops it). With nothing left, `getToken` fails
 *   with `ClientAuthenticationError` saying the user must sign in again.
 * - Reads no environment variables besides `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when the
 *   options are not given.
 * - In a chain: invalid options are `CredentialUnavailableError` (the chain moves on); a rejected code or refresh
 *   token is `ClientAuthenticationError` (the chain stops).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { AuthorizationCodeCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * // `code` came to https://app.example.com/auth/callback?code=… after the user signed in
 * const UserCredential = (code: string) =>
 *   AuthorizationCodeCredential.layer({
 *     tenantId: "00000000-0000-0000-0000-000000000000",
 *     clientId: "11111111-1111-1111-1111-111111111111",
 *     authorizationCode: Redacted.make(code),
 *     redirectUri: "https://app.example.com/auth/callback",
 *     clientSecret: Redacted.make(process.env.MY_SECRET ?? "")
 *   }).pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://graph.microsoft.com/User.Read").pipe(Effect.provide(UserCredential("…")))
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { ClientAuthenticationError, InvalidArgumentError } from "./IdentityError.js"
import * as UserTokens from "./internal/userCredentials.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The options of `make` and `layer`: `tenantId`, `clientId`, the `authorizationCode` your redirect received and the
 * `redirectUri` it was sent to are required; `clientSecret` (a confidential app) and `codeVerifier` (PKCE) are needed
 * when the app registration or the authorization request used them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tenantId: string
  readonly clientId: string
  /** The code from the authorization response. Single-use: it is redeemed once, by the first `getToken`. */
  readonly authorizationCode: Redacted.Redacted<string>
  /** Exactly the redirect URI the code was requested with. */
  readonly redirectUri: string
  /** The app's client secret, for confidential (web) apps. Sent with every grant when given. */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** The PKCE `code_verifier`, when the code was requested with a `code_challenge`. */
  readonly codeVerifier?: Redacted.Redacted<string> | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
}

/**
 * The credential's name, `"AuthorizationCodeCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "AuthorizationCodeCredential"

const validRedirectUri = (uri: string): Either.Either<string, InvalidArgumentError> => {
  const invalid = (reason: string) => Either.left(new InvalidArgumentError({ argument: "redirectUri", reason }))
  try {
    const url = new URL(uri)
    return url.hash === ""
      ? Either.right(uri)
      : invalid("the redirect URI must not contain a fragment: use the URI registered for the app")
  } catch {
    return invalid(
      "the redirect URI is not an absolute URL: use exactly the one the authorization code was requested with"
    )
  }
}

const redemptionHint = "Check that redirectUri is exactly the one the code was requested with, that the code was " +
  "not already redeemed (codes are single-use) and is less than about 10 minutes old; then get a new code."

/** Adds what to check to a rejected redemption: `invalid_grant`, or any error about the redirect URI. */
const explain = (error: UserTokens.GrantError): UserTokens.GrantError =>
  error._tag === "ClientAuthenticationError" &&
    (error.error === "invalid_grant" || /redirect/i.test(error.errorDescription ?? ""))
    ? new ClientAuthenticationError({ ...error, reason: `${error.reason} ${redemptionHint}` })
    : error

/**
 * Builds the credential's `TokenCredential` service in the current scope, which its token cache lives in: for composing
 * services by hand (most programs use `layer`). Needs `HttpClient`; it never fails: a problem with the options surfaces
 * from `getToken`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  UserTokens.make(name, options, (context) =>
    Effect.suspend(() => {
      if (Redacted.value(options.authorizationCode).trim() === "") {
        return Effect.fail(
          new InvalidArgumentError({
            argument: "authorizationCode",
            reason: "the authorization code is empty: pass the code from the authorization response"
          })
        )
      }
      return Effect.map(validRedirectUri(options.redirectUri), (redirectUri): UserTokens.InitialGrant => ({
        reusable: false,
        cancelWhenAbandoned: false,
        exhausted: "the authorization code was already used (codes are single-use)",
        run: (request) =>
          context.request(request, {
            grant_type: "authorization_code",
            code: options.authorizationCode,
            redirect_uri: redirectUri,
            ...(options.codeVerifier !== undefined ? { code_verifier: options.codeVerifier } : {})
          }).pipe(Effect.mapError(explain))
      }))
    }))

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided). Needs `HttpClient` (`effect-azure-identity/node`'s `layer` provides it); it never fails to build: a
 * problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

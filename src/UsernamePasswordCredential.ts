/**
 * Signs a user in with a username and password: the OAuth 2.0 resource owner password credentials grant (ROPC).
 *
 * **A last resort.** Microsoft deprecates this grant: it does not work with multi-factor authentication (now
 * mandatory for most Entra tenants), Conditional Access, federated or personal accounts, and the password travels
 * to the app. Prefer `AuthorizationCodeCredential`, `DeviceCodeCredential`, a managed identity or a service
 * principal. Every layer logs a warning once, when it is built.
 *
 * - `grant_type=password`, `username`, `password`, `scope` plus `openid profile offline_access`, `client_info=1`,
 *   `client_id`, and `client_secret` when configured. The password is `Redacted`, unwrapped only where the form is
 *   built, and appears in no error or log line.
 * - Access tokens are cached per tenant, scopes and CAE flag; the refresh token (kept as `Redacted`, rotated,
 *   dropped on `invalid_grant`) serves other scopes and refreshes; without one, the password grant runs again.
 * - `layerConfig()` reads `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_USERNAME`, `AZURE_PASSWORD`; every layer reads
 *   `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when those options are not given.
 * - In a chain: missing configuration is `CredentialUnavailableError` (the chain moves on); a rejected password or
 *   an MFA requirement is `ClientAuthenticationError` (the chain stops).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { TokenCredential, UsernamePasswordCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = UsernamePasswordCredential.layerConfig().pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://graph.microsoft.com/User.Read").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as AuthenticationRecord from "./AuthenticationRecord.js"
import * as Confidential from "./internal/confidentialClient.js"
import * as UserTokens from "./internal/userCredentials.js"
import type { RetryOptions } from "./RetryOptions.js"
import type * as TokenCredential from "./TokenCredential.js"
import type * as UserCredential from "./UserCredential.js"

/**
 * The options of `make`, `makeUser`, `layer` and `layerConfig`: `tenantId`, `clientId`, `username` and `password` are
 * required; `clientSecret` is needed for a confidential app.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tenantId: string
  readonly clientId: string
  readonly username: string
  readonly password: Redacted.Redacted<string>
  /** For confidential clients. Sent with every grant when given. */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
  /**
   * The account of an earlier sign-in (from `authenticate()`, or written by `@azure/identity` / `azure-identity`):
   * with a persistent `TokenCache`, its refresh token is found there after a restart, so no sign-in is needed.
   * Its `tenantId` and `clientId` are used when those options are not given.
   */
  readonly authenticationRecord?: AuthenticationRecord.AuthenticationRecord | undefined
  /**
   * Never sign the user in from `getToken`: when no token can be had silently, fail with
   * `AuthenticationRequiredError` (call `authenticate()` for an explicit sign-in).
   */
  readonly disableAutomaticAuthentication?: boolean | undefined
}

/**
 * The credential's name, `"UsernamePasswordCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "UsernamePasswordCredential"

/**
 * The warning every layer logs once.
 *
 * @since 0.1.0
 * @category constants
 */
export const deprecationWarning = "UsernamePasswordCredential uses the resource owner password grant, which " +
  "Microsoft deprecates: it fails with multi-factor authentication and Conditional Access. Use it only as a last " +
  "resort; prefer AuthorizationCodeCredential, DeviceCodeCredential, a managed identity or a service principal."

/**
 * Builds both faces of the credential: the `TokenCredential` and the `UserCredential` (`authenticate`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUser = (
  options: Options
): Effect.Effect<UserCredential.Services, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.zipRight(
    Effect.logWarning(deprecationWarning).pipe(Effect.annotateLogs("module", name)),
    UserTokens.makeUser(name, options, (context) =>
      Effect.suspend(() => {
        const username = options.username.trim()
        if (username === "") {
          return Confidential.invalid("username", "no username was given: set the username option or AZURE_USERNAME")
        }
        if (Redacted.value(options.password) === "") {
          return Confidential.invalid("password", "the password is empty: set the password option or AZURE_PASSWORD")
        }
        return Effect.succeed<UserTokens.InitialGrant>({
          reusable: true,
          cancelWhenAbandoned: false,
          exhausted: "the password grant did not give one",
          run: (request) => context.request(request, { grant_type: "password", username, password: options.password })
        })
      }))
  )

/**
 * Builds the credential's `TokenCredential` service alone (see `makeUser` for the `UserCredential` face too), in the
 * current scope, which its token cache lives in. Needs `HttpClient`; it never fails: a problem with the options
 * surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.map(makeUser(options), (services) => services.credential)

/**
 * Provides `TokenCredential` and `UserCredential` (for `authenticate`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<TokenCredential.TokenCredential | UserCredential.UserCredential, never, HttpClient.HttpClient> =>
  UserTokens.layer(makeUser(options))

/**
 * Reads the options from `Config`; by default `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_USERNAME` and
 * `AZURE_PASSWORD`. Missing configuration does not fail the layer: `getToken` fails with `CredentialUnavailableError`
 * naming it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = {
    tenantId: Config.string("AZURE_TENANT_ID"),
    clientId: Config.string("AZURE_CLIENT_ID"),
    username: Config.string("AZURE_USERNAME"),
    password: Config.redacted("AZURE_PASSWORD")
  }
): Layer.Layer<TokenCredential.TokenCredential | UserCredential.UserCredential, never, HttpClient.HttpClient> =>
  UserTokens.layer(
    Effect.matchEffect(Config.unwrap(config), {
      onFailure: (error) => Effect.succeed(UserTokens.unavailableUser(name, Confidential.describeConfigError(error))),
      onSuccess: makeUser
    })
  )

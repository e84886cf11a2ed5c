/**
 * Authenticates an app (service principal) with a client secret: the OAuth 2.0 client credentials grant against
 * `{authorityHost}/{tenantId}/oauth2/v2.0/token`.
 *
 * - Scopes for app-only tokens are `{resource}/.default`.
 * - Tokens are cached per tenant, scopes and CAE flag, shared by concurrent callers, and refreshed in the background
 *   before they expire.
 * - `layerConfig()` reads `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`; every layer reads
 *   `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when the options are not given.
 * - In a chain: missing or invalid configuration is `CredentialUnavailableError` (the chain moves on); a rejected
 *   secret is `ClientAuthenticationError` (the chain stops, so a wrong secret never falls through to another
 *   identity).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { ClientSecretCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = ClientSecretCredential.layer({
 *   tenantId: "00000000-0000-0000-0000-000000000000",
 *   clientId: "11111111-1111-1111-1111-111111111111",
 *   clientSecret: Redacted.make(process.env.MY_SECRET ?? "")
 * }).pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://vault.azure.net/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Confidential from "./internal/confidentialClient.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The options of `make` and `layer`: the app registration's `tenantId`, `clientId` and `clientSecret` are required; the
 * authority, allowed tenants, retries and regional authority have defaults. `layerConfig` reads them from `Config`
 * instead.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tenantId: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
  /**
   * Send token requests to a regional endpoint (ESTS-R): a region name such as `westus`, or `tryAutoDetect` to read
   * it from `REGION_NAME` / IMDS. Defaults to `AZURE_REGIONAL_AUTHORITY_NAME`, else `MSAL_FORCE_REGION`; unset: the
   * global endpoint.
   */
  readonly regionalAuthority?: string | undefined
  /** Where and how long `tryAutoDetect` asks IMDS (default `AZURE_POD_IDENTITY_AUTHORITY_HOST` / 169.254.169.254, 2 s). */
  readonly regionDetection?: {
    readonly imdsEndpoint?: string | undefined
    readonly timeout?: Duration.DurationInput | undefined
  } | undefined
}

/**
 * The credential's name, `"ClientSecretCredential"`: the `name` of its service and the `credential` of its errors (and
 * of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "ClientSecretCredential"

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
  Confidential.makeClientCredentials(name, options, (resolved) => {
    if (Redacted.value(options.clientSecret) === "") {
      return Effect.fail(
        Confidential.unavailableError(
          resolved.credential,
          "the client secret is empty: set clientSecret or AZURE_CLIENT_SECRET"
        )
      )
    }
    return Effect.succeed({ client_secret: options.clientSecret })
  }, Redacted.value(options.clientSecret) === "" ? undefined : { client_secret: options.clientSecret })

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

/**
 * Reads the options from `Config`; by default `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`.
 * Missing configuration does not fail the layer: `getToken` fails with `CredentialUnavailableError` naming it.
 *
 * Pass a `Config` per option to read other names or sources:
 *
 * @example
 * ```ts
 * import { Config, Effect, Layer } from "effect"
 * import { ClientSecretCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = ClientSecretCredential.layerConfig({
 *   tenantId: Config.string("MYAPP_TENANT_ID"),
 *   clientId: Config.string("MYAPP_CLIENT_ID"),
 *   clientSecret: Config.redacted("MYAPP_CLIENT_SECRET")
 * }).pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://vault.azure.net/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = {
    tenantId: Config.string("AZURE_TENANT_ID"),
    clientId: Config.string("AZURE_CLIENT_ID"),
    clientSecret: Config.redacted("AZURE_CLIENT_SECRET")
  }
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient> =>
  Confidential.layerFromConfig(name, Config.unwrap(config), make)

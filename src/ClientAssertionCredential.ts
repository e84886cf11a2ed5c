/**
 * Authenticates an app (service principal) with a client assertion you supply: the OAuth 2.0 client credentials
 * grant with `client_assertion` (a JWT, e.g. a federated token from another identity provider or one signed by a
 * key in an HSM) and `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
 *
 * - `getAssertion` is an `Effect` run for every network token request (every attempt, so a retry sends a fresh
 *   assertion), never on a cache hit. Its result is sent verbatim; return it as `Redacted` to keep it out of logs.
 * - Tokens are cached per tenant, scopes and CAE flag, shared by concurrent callers, and refreshed in the background
 *   before they expire.
 * - `layerConfig(getAssertion)` reads `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`; every layer reads
 *   `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when the options are not given.
 * - In a chain: missing configuration, an empty assertion, or a failing `getAssertion` are
 *   `CredentialUnavailableError` (the chain moves on); an assertion Entra rejects is `ClientAuthenticationError`
 *   (the chain stops). `getAssertion` failing with one of this library's errors passes it through unchanged.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { ClientAssertionCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * declare const fetchFederatedToken: () => Promise<string>
 *
 * const CredentialLive = ClientAssertionCredential.layer({
 *   tenantId: "00000000-0000-0000-0000-000000000000",
 *   clientId: "11111111-1111-1111-1111-111111111111",
 *   getAssertion: Effect.promise(() => fetchFederatedToken())
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
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { ClientAuthenticationError, CredentialUnavailableError } from "./IdentityError.js"
import { assertionFields } from "./internal/clientAssertion.js"
import * as Confidential from "./internal/confidentialClient.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The options of `make` and `layer`: the app's `tenantId` and `clientId`, and `getAssertion`, the effect that returns a
 * fresh client assertion (a signed JWT) for each network token request; its failure `E` fails the request with
 * `CredentialUnavailableError` (an error of this library passes through unchanged).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = never> {
  readonly tenantId: string
  readonly clientId: string
  /** Produces a client assertion (a JWT); run for every network token request, never on a cache hit. */
  readonly getAssertion: Effect.Effect<string | Redacted.Redacted<string>, E>
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
 * The credential's name, `"ClientAssertionCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "ClientAssertionCredential"

/** Names a failure of `getAssertion` without dumping it: its tag or name, and the first line of its message. */
const describeFailure = (error: unknown): string => {
  const label = Predicate.hasProperty(error, "_tag") && typeof error._tag === "string"
    ? error._tag
    : error instanceof Error
    ? error.name
    : typeof error
  const message = Predicate.hasProperty(error, "message") && typeof error.message === "string"
    ? error.message.split(/\r?\n/)[0]!.slice(0, 200)
    : ""
  return message === "" ? label : `${label}: ${message}`
}

/**
 * Builds the credential's `TokenCredential` service in the current scope, which its token cache lives in: for composing
 * services by hand (most programs use `layer`). Needs `HttpClient`; it never fails: a problem with the options surfaces
 * from `getToken`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E>(
  options: Options<E>
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Confidential.makeClientCredentials(name, options, (resolved) =>
    options.getAssertion.pipe(
      Effect.catchAll((error): Effect.Effect<never, CredentialUnavailableError | ClientAuthenticationError> =>
        error instanceof CredentialUnavailableError || error instanceof ClientAuthenticationError
          ? Effect.fail(error)
          : Effect.fail(
            Confidential.unavailableError(
              resolved.credential,
              `getAssertion failed (${describeFailure(error)}): fix the assertion source`
            )
          )
      ),
      Effect.flatMap((assertion: string | Redacted.Redacted<string>) => {
        const value = Redacted.isRedacted(assertion) ? Redacted.value(assertion) : assertion
        return value.trim() === ""
          ? Effect.fail(
            Confidential.unavailableError(resolved.credential, "getAssertion returned an empty assertion")
          )
          : Effect.succeed(assertionFields(Redacted.make(value.trim())))
      })
    ))

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided). Needs `HttpClient` (`effect-azure-identity/node`'s `layer` provides it); it never fails to build: a
 * problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E>(
  options: Options<E>
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

/**
 * Reads the tenant and client ids from `Config` (by default `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`); the
 * assertion comes from `getAssertion`. Missing configuration does not fail the layer: `getToken` fails with
 * `CredentialUnavailableError` naming it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <E>(
  getAssertion: Effect.Effect<string | Redacted.Redacted<string>, E>,
  config: Config.Config.Wrap<Omit<Options<E>, "getAssertion">> = {
    tenantId: Config.string("AZURE_TENANT_ID"),
    clientId: Config.string("AZURE_CLIENT_ID")
  }
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient> =>
  Confidential.layerFromConfig(name, Config.unwrap(config), (options) => make({ ...options, getAssertion }))

/**
 * Authenticates an app (service principal) with a certificate: the OAuth 2.0 client credentials grant, the client
 * proving itself with a JWT assertion signed by the certificate's private key (`private_key_jwt`). Also exported as
 * `ClientCertificateCredential` (the `@azure/identity` name).
 *
 * - The certificate is a PEM file (or PEM text) holding the certificate(s), leaf first, and the RSA private key:
 *   PKCS#8, PKCS#1, encrypted PKCS#8 or legacy encrypted PKCS#1 (with `certificatePassword`).
 * - The assertion is signed `PS256` with `x5t#S256` (what Entra documents now), or `RS256` with `x5t` when
 *   `signingAlgorithm: "RS256"`; `aud` is the exact token endpoint, it lives 10 minutes, and a fresh one is signed for
 *   every network token request (never reused). `sendCertificateChain` adds `x5c` for Subject Name / Issuer
 *   authentication.
 * - The file is read through `FileSystem` for every network token request (parsed again only when it changed), so a
 *   renewed certificate is picked up without a restart.
 * - Tokens are cached per tenant, scopes and CAE flag, shared by concurrent callers, and refreshed in the background
 *   before they expire.
 * - `layerConfig()` reads `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_CERTIFICATE_PATH`,
 *   `AZURE_CLIENT_CERTIFICATE_PASSWORD` and `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` (empty = unset); every layer reads
 *   `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when the options are not given.
 * - In a chain: missing or invalid configuration, an unreadable file, a bad certificate, key or password are
 *   `CredentialUnavailableError` (the chain moves on; messages never contain key material); a certificate Entra
 *   rejects is `ClientAuthenticationError` (the chain stops).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CertificateCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = CertificateCredential.layer({
 *   tenantId: "00000000-0000-0000-0000-000000000000",
 *   clientId: "11111111-1111-1111-1111-111111111111",
 *   certificatePath: "/etc/secrets/app.pem"
 * }).pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://vault.azure.net/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { certificateAssertionFields, prepareCertificate } from "./internal/clientAssertion.js"
import * as Confidential from "./internal/confidentialClient.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * Where the PEM comes from: a file path, or the PEM text itself (exactly one).
 *
 * @since 0.1.0
 * @category models
 */
export type CertificateSource =
  | {
    /** Path of a PEM file holding the certificate(s) and the private key. */
    readonly certificatePath: string
    readonly certificate?: undefined
  }
  | {
    /** PEM text holding the certificate(s) and the private key. */
    readonly certificate: string | Redacted.Redacted<string>
    readonly certificatePath?: undefined
  }

/**
 * The options every certificate source shares: the app's `tenantId` and `clientId` are required; the rest (certificate
 * password, `x5c` chain, signing algorithm, authority, tenants, retries, regional authority) have defaults.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommonOptions {
  readonly tenantId: string
  readonly clientId: string
  /** Password of an encrypted private key. */
  readonly certificatePassword?: Redacted.Redacted<string> | undefined
  /** Send the certificate chain (`x5c` header), for Subject Name / Issuer authentication. Default `false`. */
  readonly sendCertificateChain?: boolean | undefined
  /** `"PS256"` with `x5t#S256` (default) or `"RS256"` with `x5t` (older setups, ADFS). */
  readonly signingAlgorithm?: "PS256" | "RS256" | undefined
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
 * The options of `make` and `layer`: {@link CommonOptions} plus where the certificate is, either `certificatePath` (a
 * PEM file) or `certificate` (PEM text), never both.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = CommonOptions & CertificateSource

/**
 * What `layerConfig` reads: a certificate file.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions extends CommonOptions {
  readonly certificatePath: string
}

/**
 * The credential's name, `"CertificateCredential"`: the `name` of its service and the `credential` of its errors (and
 * of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "CertificateCredential"

/**
 * Builds the credential's `TokenCredential` service in the current scope, which its token cache lives in: for composing
 * services by hand (most programs use `layer`). Needs `HttpClient` and `FileSystem`; it never fails: a problem with the
 * options surfaces from `getToken`. The `FileSystem` reads `certificatePath`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const certificate = yield* prepareCertificate(name, options)
    return yield* Confidential.makeClientCredentials(
      name,
      options,
      (resolved, context) => certificateAssertionFields(certificate, resolved.clientId, context.tokenEndpoint)
    )
  })

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided). Needs `HttpClient` and `FileSystem` (`effect-azure-identity/node`'s `layer` provides them); it
 * never fails to build: a problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

const optionalRedacted = (key: string): Config.Config<Redacted.Redacted<string> | undefined> =>
  Config.option(Config.redacted(key)).pipe(
    Config.map((o) => (Option.isSome(o) && Redacted.value(o.value) !== "" ? o.value : undefined))
  )

/** `true`/`1`/`yes` or `false`/`0`/`no` (any case); unset or empty is `false`. */
const flag = (key: string): Config.Config<boolean> =>
  Config.nested(
    Config.option(Config.string()).pipe(
      Config.mapOrFail((value) => {
        const v = Option.getOrElse(value, () => "").trim().toLowerCase()
        if (v === "" || v === "false" || v === "0" || v === "no") return Either.right(false)
        if (v === "true" || v === "1" || v === "yes") return Either.right(true)
        return Either.left(ConfigError.InvalidData([], "expected true or false"))
      })
    ),
    key
  )

/**
 * Reads the options from `Config`; by default `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_CERTIFICATE_PATH`,
 * `AZURE_CLIENT_CERTIFICATE_PASSWORD` (optional) and `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` (optional, `true`/`1`).
 * Missing configuration does not fail the layer: `getToken` fails with `CredentialUnavailableError` naming it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConfigOptions> = {
    tenantId: Config.string("AZURE_TENANT_ID"),
    clientId: Config.string("AZURE_CLIENT_ID"),
    certificatePath: Config.string("AZURE_CLIENT_CERTIFICATE_PATH"),
    certificatePassword: optionalRedacted("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
    sendCertificateChain: flag("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
  }
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Confidential.layerFromConfig(name, Config.unwrap(config), make)

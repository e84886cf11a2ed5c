/**
 * Authenticates with a federated token from a file: Azure Kubernetes Service workload identity (the projected
 * service-account token), or any OIDC token written to disk (GitHub Actions, Azure DevOps). The token is sent as the
 * client assertion of the OAuth 2.0 client credentials grant, to an app registration or user-assigned managed
 * identity whose federated credential trusts its issuer and subject.
 *
 * - The token file is read (and trimmed) for every network token request, never cached: kubelet rotates it, and a
 *   stale copy is the classic cause of `AADSTS700024` (assertion outside its validity window). Cache hits do not touch
 *   the file.
 * - `layer()` takes `tenantId`, `clientId` and `tokenFilePath` from the options, else from `AZURE_TENANT_ID`,
 *   `AZURE_CLIENT_ID` and `AZURE_FEDERATED_TOKEN_FILE` (empty = unset; AKS sets all three in the pod). `layerConfig`
 *   reads them from the `Config` you give. Every layer reads `AZURE_AUTHORITY_HOST` (also set by AKS) and
 *   `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when the options are not given.
 * - In a chain: a missing setting (the message names each one), an unreadable or empty token file are
 *   `CredentialUnavailableError` (the chain moves on); a token Entra rejects is `ClientAuthenticationError` (the chain
 *   stops), with a hint for `AADSTS700024` and the other known codes.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { TokenCredential, WorkloadIdentityCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * // in an AKS pod labelled azure.workload.identity/use: "true"
 * const CredentialLive = WorkloadIdentityCredential.layer().pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://vault.azure.net/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { assertionFields, readFederatedToken } from "./internal/clientAssertion.js"
import * as Confidential from "./internal/confidentialClient.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The options of `make`, `layer` and `layerConfig`, all optional: the tenant, client id and federated token file
 * default to `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_FEDERATED_TOKEN_FILE` (as AKS workload identity sets
 * them).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Defaults to `AZURE_TENANT_ID`. */
  readonly tenantId?: string | undefined
  /** The app registration's or user-assigned managed identity's client id. Defaults to `AZURE_CLIENT_ID`. */
  readonly clientId?: string | undefined
  /** The federated token file. Defaults to `AZURE_FEDERATED_TOKEN_FILE`. */
  readonly tokenFilePath?: string | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
}

/**
 * The credential's name, `"WorkloadIdentityCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "WorkloadIdentityCredential"

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s.trim() === "" ? undefined : s)

const optionalString = (key: string): Config.Config<string | undefined> =>
  Config.option(Config.string(key)).pipe(Config.map((o) => nonEmpty(Option.getOrUndefined(o))))

/** Reads the federated token, trimmed; unreadable or empty is `CredentialUnavailableError`. */
const makeWith = (
  options: Options,
  fallbackToEnv: boolean
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const fromEnv = (key: string) =>
      fallbackToEnv ? optionalString(key).pipe(Effect.orElseSucceed(() => undefined)) : Effect.succeed(undefined)
    const tenantId = nonEmpty(options.tenantId) ?? (yield* fromEnv("AZURE_TENANT_ID"))
    const clientId = nonEmpty(options.clientId) ?? (yield* fromEnv("AZURE_CLIENT_ID"))
    const tokenFilePath = nonEmpty(options.tokenFilePath) ?? (yield* fromEnv("AZURE_FEDERATED_TOKEN_FILE"))
    const missing = [
      tenantId === undefined ? "AZURE_TENANT_ID (tenantId option)" : undefined,
      clientId === undefined ? "AZURE_CLIENT_ID (clientId option)" : undefined,
      tokenFilePath === undefined ? "AZURE_FEDERATED_TOKEN_FILE (tokenFilePath option)" : undefined
    ].filter((m) => m !== undefined)
    if (tokenFilePath === undefined || missing.length > 0) {
      return Confidential.unavailable(
        name,
        `missing configuration: ${missing.join(", ")}: set them (AKS workload identity sets all three in a pod ` +
          `labelled azure.workload.identity/use: "true")`
      )
    }
    const path = tokenFilePath.trim()
    return yield* Confidential.makeClientCredentials(
      name,
      { ...options, tenantId, clientId },
      () => Effect.map(readFederatedToken(name, fs, path), assertionFields)
    )
  })

/**
 * Options not given are read from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_FEDERATED_TOKEN_FILE`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | FileSystem.FileSystem | Scope.Scope> =>
  makeWith(options, true)

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided). Needs `HttpClient` and `FileSystem` (`effect-azure-identity/node`'s `layer` provides them); it
 * never fails to build: a problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

/**
 * Reads the options from `Config`; by default `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_FEDERATED_TOKEN_FILE`
 * (empty = unset). Missing configuration does not fail the layer: `getToken` fails with `CredentialUnavailableError`
 * naming each missing setting.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = {
    tenantId: optionalString("AZURE_TENANT_ID"),
    clientId: optionalString("AZURE_CLIENT_ID"),
    tokenFilePath: optionalString("AZURE_FEDERATED_TOKEN_FILE")
  }
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Confidential.layerFromConfig(name, Config.unwrap(config), (options) => makeWith(options, false))

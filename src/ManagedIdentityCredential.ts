/**
 * Gets tokens for the managed identity of the Azure host the program runs on: VMs and scale sets (IMDS), App Service,
 * Functions and Container Apps, the legacy App Service API and Azure Machine Learning, Cloud Shell, Azure Arc-enabled
 * servers, Service Fabric, and AKS workload identity (token exchange).
 *
 * - The host is recognised once, when the layer is built, from the environment (through `Config`): in order,
 *   `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_TENANT_ID` + a client id (the `clientId` option, else `AZURE_CLIENT_ID`):
 *   token exchange, delegated to a `WorkloadIdentityCredential` built once per layer; `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT`
 *   (Service Fabric); `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service 2019 API); `MSI_ENDPOINT` + `MSI_SECRET`
 *   (App Service 2017 API, Azure ML with `DEFAULT_IDENTITY_CLIENT_ID`); `MSI_ENDPOINT` (Cloud Shell);
 *   `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT` or the Arc agent on disk (Azure Arc); else IMDS, at the `imdsEndpoint`
 *   option, else `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else `169.254.169.254`. See `docs/managed-identity.md` for
 *   exactly what is sent to each host.
 * - System-assigned unless one of `clientId`, `objectId` or `resourceId` is given (at most one). `layerConfig()` also
 *   takes `AZURE_CLIENT_ID` as the client id; `layer()` reads only what it is given.
 * - One scope per request (`https://vault.azure.net/.default`); it is sent as the resource (without `/.default`).
 *   Tokens are cached per resource, shared by concurrent callers and refreshed in the background (tokens living
 *   ≥ 2 h at half their life). `tenantId` in `getToken` options is ignored: the identity's tenant is fixed.
 * - IMDS requests are retried on 404, 410 (for at least 70 s), 429 and 5xx, connection failures at most twice
 *   (none inside a chain), so alone it gives up on a refused or unreachable IMDS within 5 s; other hosts like the
 *   Entra token client. Bodies are read up to 1 MiB.
 * - In a chain: no managed-identity environment, no answer, 400 "identity not found", IMDS's Docker Desktop 403
 *   "unreachable", and unsupported selections are `CredentialUnavailableError` (the chain moves on); any other HTTP
 *   error is `ClientAuthenticationError` (the chain stops). Inside any chain (or with `probe: true`), IMDS is
 *   first probed with a 1 s timeout and no retries, so a machine without IMDS moves on within a second.
 * - Secret headers (`X-IDENTITY-HEADER`, `secret`, Arc's `Authorization`) are redacted in spans and logs and never
 *   appear in errors.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { ManagedIdentityCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * // a user-assigned identity; omit clientId for the system-assigned one
 * const CredentialLive = ManagedIdentityCredential.layer({ clientId: "11111111-2222-3333-4444-555555555555" }).pipe(
 *   Layer.provide(IdentityNode.layer)
 * )
 *
 * TokenCredential.getToken("https://vault.azure.net/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Confidential from "./internal/confidentialClient.js"
import { lazyModule } from "./internal/lazy.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The options of `make`, `layer` and `layerConfig`, all optional: without any, the system-assigned identity of the
 * host. Give one of `clientId`, `objectId` or `resourceId` for a user-assigned identity; the rest tune the IMDS probe,
 * the Azure Arc key file and the retries.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A user-assigned identity's client (application) id. Also the client id of the token exchange. */
  readonly clientId?: string | undefined
  /** A user-assigned identity's object (principal) id. */
  readonly objectId?: string | undefined
  /** A user-assigned identity's ARM resource id (`/subscriptions/…/userAssignedIdentities/…`). */
  readonly resourceId?: string | undefined
  /**
   * The IMDS origin, e.g. `http://127.0.0.1:8080` (tests, proxies). Defaults to `AZURE_POD_IDENTITY_AUTHORITY_HOST`,
   * else `http://169.254.169.254`.
   */
  readonly imdsEndpoint?: string | undefined
  /**
   * Probe IMDS before its first token request: one request without the `Metadata` header, `probeTimeoutMillis`
   * timeout, no retries; any HTTP answer means IMDS is there, except a 403 mentioning "unreachable" (Docker
   * Desktop). "Available" is remembered for the life of the layer; "unavailable" fails fast with
   * `CredentialUnavailableError` for `probeUnavailableMillis`, then IMDS is probed again (so an IMDS that starts late
   * still works). `true`: always probe; `false`: never (full retries, even in a chain); left out: probe exactly when
   * `getToken` runs as a link of a chain (`ChainedTokenCredential`, `DefaultAzureCredential`), where connection
   * failures are then not retried either. Only IMDS is probed, and not when `AZURE_POD_IDENTITY_AUTHORITY_HOST` is
   * set.
   */
  readonly probe?: boolean | undefined
  /** The probe's timeout. Default 1000 ms. */
  readonly probeTimeoutMillis?: number | undefined
  /** How long a negative probe is remembered. Default 5 minutes. */
  readonly probeUnavailableMillis?: number | undefined
  /** Where the Azure Arc agent lives (tests, unusual installs). Defaults per platform: see the docs. */
  readonly azureArc?: {
    /** Files whose presence means "the Arc agent is installed" (Linux: `/opt/azcmagent/bin/himds`). */
    readonly himdsPaths?: ReadonlyArray<string> | undefined
    /** The only directory the agent's key file may be in (Linux: `/var/opt/azcmagent/tokens`). */
    readonly keyDirectory?: string | undefined
  } | undefined
  /** How requests to hosts other than IMDS are retried (default: like the Entra token client). */
  readonly retryPolicy?: RetryOptions | undefined
  /** How IMDS requests are retried (default: 404, 410 for ≥ 70 s, 429, 5xx with exponential backoff). */
  readonly imdsRetryPolicy?: RetryOptions | undefined
}

/**
 * The credential's name, `"ManagedIdentityCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "ManagedIdentityCredential"

// the hosts' code, loaded when a credential is built (not at import: docs/performance.md, "Import cost")
const implementation = lazyModule(() => import("./internal/managedIdentity/make.js"))

/**
 * Recognises the host from the environment and builds the credential. Never fails: problems surface from `getToken`
 * as `CredentialUnavailableError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | FileSystem.FileSystem | Scope.Scope> =>
  Effect.flatMap(implementation, (impl) => impl.make(options))

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided). Needs `HttpClient` and `FileSystem` (`effect-azure-identity/node`'s `layer` provides them); it
 * never fails to build: a problem with the options surfaces from `getToken`. Service Fabric needs a `PinnedHttpClient`
 * too (the node layer provides it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

const optionalString = (key: string): Config.Config<string | undefined> =>
  Config.option(Config.string(key)).pipe(
    Config.map((o) => Option.getOrUndefined(Option.filter(o, (s) => s.trim() !== "")))
  )

/**
 * Reads the options from `Config`; by default `AZURE_CLIENT_ID` as the client id of a user-assigned identity
 * (system-assigned when unset or empty). The host itself is always recognised from the environment. Unreadable
 * configuration does not fail the layer: `getToken` fails with `CredentialUnavailableError` naming it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = { clientId: optionalString("AZURE_CLIENT_ID") }
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Confidential.layerFromConfig(name, Config.unwrap(config), make)

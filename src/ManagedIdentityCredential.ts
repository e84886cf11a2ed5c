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
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as AuthorityHost from "./AuthorityHost.js"
import { CredentialUnavailableError, InvalidArgumentError } from "./IdentityError.js"
import * as Confidential from "./internal/confidentialClient.js"
import { defaultRetryPolicy, resolvePolicy } from "./internal/http.js"
import * as AppService2017 from "./internal/managedIdentity/appService2017.js"
import * as AppService2019 from "./internal/managedIdentity/appService2019.js"
import * as AzureArc from "./internal/managedIdentity/azureArc.js"
import * as CloudShell from "./internal/managedIdentity/cloudShell.js"
import type { Identity, Source, SourceContext } from "./internal/managedIdentity/common.js"
import {
  identityKey,
  managedIdentityClient,
  systemAssigned,
  unavailableSource
} from "./internal/managedIdentity/common.js"
import * as Detect from "./internal/managedIdentity/detect.js"
import * as Imds from "./internal/managedIdentity/imds.js"
import * as ServiceFabric from "./internal/managedIdentity/serviceFabric.js"
import * as TokenExchange from "./internal/managedIdentity/tokenExchange.js"
import * as Peek from "./internal/peek.js"
import * as TokenCacheEngine from "./internal/tokenCache.js"
import * as PinnedHttpClient from "./PinnedHttpClient.js"
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

const selectIdentity = (options: Options): Either.Either<Identity, InvalidArgumentError> => {
  const given = (
    [["clientId", options.clientId], ["objectId", options.objectId], ["resourceId", options.resourceId]] as const
  ).flatMap(([key, value]) => (value === undefined || value.trim() === "" ? [] : [[key, value.trim()] as const]))
  if (given.length > 1) {
    return Either.left(
      new InvalidArgumentError({
        argument: given.map(([key]) => key).join(", "),
        reason: `give at most one of clientId, objectId and resourceId to select a user-assigned identity; got ${
          given.map(([key, value]) => `${key} ${JSON.stringify(value)}`).join(", ")
        }`
      })
    )
  }
  if (given.length === 0) return Either.right(systemAssigned)
  const [key, value] = given[0]!
  return Either.right(
    key === "clientId"
      ? { _tag: "ClientId", value }
      : key === "objectId"
      ? { _tag: "ObjectId", value }
      : { _tag: "ResourceId", value }
  )
}

const makeSource = (
  ctx: SourceContext,
  detected: Exclude<Detect.Detected, { readonly _tag: "TokenExchange" }>,
  options: Options
): Effect.Effect<Source, never, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    switch (detected._tag) {
      case "ServiceFabric":
        return yield* ServiceFabric.make(ctx, detected, yield* Effect.serviceOption(PinnedHttpClient.PinnedHttpClient))
      case "AppService2019":
        return AppService2019.make(ctx, detected)
      case "AppService2017":
        return AppService2017.make(ctx, detected)
      case "CloudShell":
        return CloudShell.make(ctx, detected)
      case "AzureArc":
        return AzureArc.make(ctx, detected, yield* FileSystem.FileSystem)
      case "Imds":
        return yield* Imds.make(ctx, {
          host: detected.host,
          hostSource: detected.hostSource,
          probe: detected.podIdentity ? false : options.probe,
          probeTimeoutMillis: options.probeTimeoutMillis ?? Imds.defaultProbeTimeoutMillis,
          probeUnavailableMillis: options.probeUnavailableMillis ?? Imds.defaultProbeUnavailableMillis,
          retryPolicy: options.imdsRetryPolicy
        })
      case "Incomplete":
        return unavailableSource(ctx.credential, "managed identity", detected.reason)
    }
  })

/** One scope, as a resource, or why not. */
const resourceOf = (scopes: string | ReadonlyArray<string>): Either.Either<string, CredentialUnavailableError> => {
  const valid = AuthorityHost.validateScopes(scopes)
  if (Either.isLeft(valid)) {
    return Either.left(new CredentialUnavailableError({ credential: name, reason: valid.left.message }))
  }
  if (valid.right.length !== 1) {
    return Either.left(
      new CredentialUnavailableError({
        credential: name,
        reason: `managed identity takes exactly one scope per request, got ${valid.right.length} (${
          valid.right.join(" ")
        }): call getToken once per resource, e.g. "https://vault.azure.net/.default"`
      })
    )
  }
  return Either.right(AuthorityHost.scopeToResource(valid.right[0]!))
}

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
  Effect.gen(function*() {
    const identity = selectIdentity(options)
    if (Either.isLeft(identity)) return Confidential.unavailable(name, identity.left.message)
    const fs = yield* FileSystem.FileSystem
    const detected = yield* Detect.detect({
      clientId: options.clientId,
      imdsEndpoint: options.imdsEndpoint,
      himdsPaths: options.azureArc?.himdsPaths,
      arcKeyDirectory: options.azureArc?.keyDirectory,
      platform: undefined
    }, fs)

    if (detected._tag === "TokenExchange") {
      yield* Effect.logDebug(`${name}: using the ${TokenExchange.label}`)
      if (identity.right._tag === "ObjectId" || identity.right._tag === "ResourceId") {
        return Confidential.unavailable(
          name,
          `the ${TokenExchange.label} selects identities by client id only: use the clientId option or ` +
            `AZURE_CLIENT_ID instead of objectId / resourceId`
        )
      }
      const workload = yield* TokenExchange.make(name, {
        tenantId: detected.tenantId,
        clientId: Option.getOrElse(detected.clientId, () => ""),
        tokenFilePath: detected.tokenFilePath
      }, options.retryPolicy)
      return TokenCredential.make(name, (scopes, getTokenOptions) =>
        Either.match(resourceOf(scopes), {
          onLeft: Effect.fail,
          // like every managed identity, the token exchange ignores a requested tenant
          onRight: () => workload.getToken(scopes, { ...getTokenOptions, tenantId: undefined })
        }))
    }

    const client = managedIdentityClient(yield* HttpClient.HttpClient)
    const ctx: SourceContext = {
      credential: name,
      client,
      identity: identity.right,
      retryPolicy: resolvePolicy(options.retryPolicy, defaultRetryPolicy)
    }
    const source = yield* makeSource(ctx, detected, options)
    yield* Effect.logDebug(`${name}: using ${source.label}`)
    const cache = yield* TokenCacheEngine.make({
      partition: `${name}|${source.label}|${identityKey(identity.right)}`,
      name
    })
    const service = TokenCredential.make(name, (scopes, getTokenOptions) =>
      Either.match(resourceOf(scopes), {
        onLeft: Effect.fail,
        onRight: (resource) => {
          const bypass = getTokenOptions?.claims !== undefined && getTokenOptions.claims.trim() !== ""
          // a span for each request to the endpoint, none for a token served from the cache (the hot path of a
          // service on Azure: a span there would cost more than the call itself, see docs/observability.md)
          return cache.get(
            `${identityKey(identity.right)}|${resource}`,
            () =>
              source.getToken(resource).pipe(
                Effect.withSpan(`${name}.requestToken`, {
                  attributes: {
                    "azure.identity.credential": name,
                    "azure.identity.source": source.label,
                    "azure.identity.resource": resource
                  }
                })
              ),
            bypass
          )
        }
      }))
    return Peek.register(service, (scopes, getTokenOptions, nowMillis) => {
      if (getTokenOptions?.claims !== undefined && getTokenOptions.claims.trim() !== "") return undefined
      const resource = resourceOf(scopes)
      return Either.isLeft(resource)
        ? undefined
        : cache.peekFresh(`${identityKey(identity.right)}|${resource.right}`, nowMillis)
    })
  }).pipe(Effect.annotateLogs("module", name))

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

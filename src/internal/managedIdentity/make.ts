/**
 * The implementation of `ManagedIdentityCredential.make`: recognising the host and the sources of every host. Loaded
 * with `import()` when the credential is built, so that importing the library does not parse it (docs/performance.md,
 * "Import cost").
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as AuthorityHost from "../../AuthorityHost.js"
import { CredentialUnavailableError, InvalidArgumentError } from "../../IdentityError.js"
import { name, type Options } from "../../ManagedIdentityCredential.js"
import * as PinnedHttpClient from "../../PinnedHttpClient.js"
import * as TokenCredential from "../../TokenCredential.js"
import * as Confidential from "../confidentialClient.js"
import { defaultRetryPolicy, resolvePolicy } from "../http.js"
import * as Peek from "../peek.js"
import * as TokenCacheEngine from "../tokenCache.js"
import * as AppService2017 from "./appService2017.js"
import * as AppService2019 from "./appService2019.js"
import * as AzureArc from "./azureArc.js"
import * as CloudShell from "./cloudShell.js"
import type { Identity, Source, SourceContext } from "./common.js"
import { identityKey, managedIdentityClient, systemAssigned, unavailableSource } from "./common.js"
import * as Detect from "./detect.js"
import * as Imds from "./imds.js"
import * as ServiceFabric from "./serviceFabric.js"
import * as TokenExchange from "./tokenExchange.js"

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

/** Recognises the host and builds the credential (`ManagedIdentityCredential.make`). */
export const make = (
  options: Options
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

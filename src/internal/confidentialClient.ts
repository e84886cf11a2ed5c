import * as HttpClient from "@effect/platform/HttpClient"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as AuthorityHost from "../AuthorityHost.js"
import type { ClientAuthenticationError } from "../IdentityError.js"
import { CredentialUnavailableError } from "../IdentityError.js"
import type { RetryOptions } from "../RetryOptions.js"
import * as TokenCredential from "../TokenCredential.js"
import type { FormValue, TokenResponse } from "./aad.js"
import { entraClient, mergeClaims, requestToken, tokenEndpoint } from "./aad.js"
import * as Regional from "./regionalAuthority.js"
import * as TokenCacheEngine from "./tokenCache.js"

/** Everything a credential talking to the Entra token endpoint has resolved about itself. @internal */
export interface Resolved {
  readonly credential: string
  readonly authorityHost: string
  readonly tenantId: string
  readonly clientId: string
  readonly additionallyAllowedTenants: ReadonlyArray<string>
  readonly client: HttpClient.HttpClient
  readonly retryPolicy: RetryOptions | undefined
}

/** The request for one network token request: grant fields, per attempt. @internal */
export interface GrantContext {
  readonly tenantId: string
  readonly tokenEndpoint: string
  readonly scopes: ReadonlyArray<string>
}

/** @internal */
export interface BaseOptions extends Regional.Options {
  readonly tenantId?: string | undefined
  readonly clientId?: string | undefined
  readonly authorityHost?: string | undefined
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override the retry policy of token requests (tests, tight latency budgets). */
  readonly retryPolicy?: RetryOptions | undefined
}

/**
 * Resolves and validates what every Entra credential needs. Problems become a description, so the layer still
 * builds and `getToken` fails with `CredentialUnavailableError`.
 *
 * @internal
 */
export const resolve = (
  credential: string,
  options: BaseOptions
): Effect.Effect<Either.Either<Resolved, string>, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = entraClient(yield* HttpClient.HttpClient)
    const authority = yield* Effect.either(AuthorityHost.resolve(options.authorityHost))
    if (Either.isLeft(authority)) return Either.left(authority.left)
    const tenantId = options.tenantId?.trim() ?? ""
    if (tenantId === "") return Either.left("no tenant id was given: set the tenantId option or AZURE_TENANT_ID")
    const validTenant = AuthorityHost.validateTenantId(tenantId)
    if (Either.isLeft(validTenant)) return Either.left(validTenant.left)
    const clientId = options.clientId?.trim() ?? ""
    if (clientId === "") return Either.left("no client id was given: set the clientId option or AZURE_CLIENT_ID")
    const additionallyAllowedTenants = options.additionallyAllowedTenants ??
      (yield* AuthorityHost.additionallyAllowedTenantsFromConfig)
    return Either.right({
      credential,
      authorityHost: authority.right,
      tenantId,
      clientId,
      additionallyAllowedTenants,
      client,
      retryPolicy: options.retryPolicy
    })
  })

/** A credential that can never try, with the reason. @internal */
export const unavailable = (credential: string, reason: string): TokenCredential.Service =>
  TokenCredential.make(
    credential,
    () => Effect.fail(new CredentialUnavailableError({ credential, reason, code: "not-configured" }))
  )

/** Validates scopes and picks the tenant for one `getToken` call. @internal */
export const prepare = (
  resolved: Pick<Resolved, "credential" | "tenantId" | "additionallyAllowedTenants">,
  scopes: string | ReadonlyArray<string>,
  options: TokenCredential.GetTokenOptions | undefined
): Either.Either<{ scopes: ReadonlyArray<string>; tenantId: string }, CredentialUnavailableError> => {
  const validScopes = AuthorityHost.validateScopes(scopes)
  if (Either.isLeft(validScopes)) {
    return Either.left(
      new CredentialUnavailableError({
        credential: resolved.credential,
        reason: validScopes.left,
        code: "invalid-configuration"
      })
    )
  }
  const tenant = AuthorityHost.resolveTenant({
    configured: resolved.tenantId,
    requested: options?.tenantId,
    additionallyAllowedTenants: resolved.additionallyAllowedTenants
  })
  if (Either.isLeft(tenant)) {
    return Either.left(
      new CredentialUnavailableError({
        credential: resolved.credential,
        reason: tenant.left,
        code: "invalid-configuration"
      })
    )
  }
  return Either.right({ scopes: validScopes.right, tenantId: tenant.right })
}

/**
 * A client-credentials credential: the grant is `client_credentials` with whatever client authentication
 * `clientAuth` returns (a secret, or a fresh assertion for every network request).
 *
 * @internal
 */
export const makeClientCredentials = (
  credential: string,
  options: BaseOptions,
  clientAuth: (
    resolved: Resolved,
    context: GrantContext
  ) => Effect.Effect<Readonly<Record<string, FormValue>>, ClientAuthenticationError | CredentialUnavailableError>
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const resolvedEither = yield* resolve(credential, options)
    if (Either.isLeft(resolvedEither)) return unavailable(credential, resolvedEither.left)
    const resolved = resolvedEither.right
    const regional = yield* Regional.make(resolved.client, resolved.authorityHost, options)
    if (Either.isLeft(regional)) return unavailable(credential, regional.left)
    const cache = yield* TokenCacheEngine.make({
      partition: `${credential}|${resolved.authorityHost}|${resolved.clientId}`,
      name: credential
    })
    const fetch = (authorityHost: string, tenantId: string, scopes: ReadonlyArray<string>, claims?: string) =>
      requestToken(resolved.client, {
        credential,
        authorityHost,
        tenantId,
        scopes,
        claims,
        retryPolicy: resolved.retryPolicy,
        form: Effect.map(
          clientAuth(resolved, { tenantId, scopes, tokenEndpoint: tokenEndpoint(authorityHost, tenantId) }),
          (auth) => ({ client_id: resolved.clientId, grant_type: "client_credentials", ...auth })
        )
      }).pipe(Effect.map((response: TokenResponse) => response.accessToken))
    // Validated requests by their raw input: the cached path does one Map lookup instead of re-validating,
    // re-sorting and re-merging on every call. Bounded; claims (always a network request) are not memoised.
    const memo = new Map<string, { key: string; list: ReadonlyArray<string>; tenantId: string; claims?: string }>()
    return TokenCredential.make(credential, (scopes, getTokenOptions) => {
      const enableCae = getTokenOptions?.enableCae === true
      const bypass = getTokenOptions?.claims !== undefined && getTokenOptions.claims.trim() !== ""
      // The count keeps ["a", "b"] and the invalid ["a\u0001b"] apart: a hit must never skip validation.
      const memoKey = bypass ?
        undefined :
        `${typeof scopes === "string" ? `1\u0002${scopes}` : `${scopes.length}\u0002${scopes.join("\u0001")}`}\u0002${
          getTokenOptions?.tenantId ?? ""
        }\u0002${enableCae}`
      let entry = memoKey === undefined ? undefined : memo.get(memoKey)
      if (entry === undefined) {
        const prepared = prepare(resolved, scopes, getTokenOptions)
        if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
        const { scopes: list, tenantId } = prepared.right
        const claims = mergeClaims(getTokenOptions?.claims, enableCae)
        entry = {
          key: TokenCacheEngine.cacheKey(tenantId, list, enableCae),
          list,
          tenantId,
          ...(claims === undefined ? {} : { claims })
        }
        if (memoKey !== undefined) {
          if (memo.size >= 1024) memo.clear()
          memo.set(memoKey, entry)
        }
      }
      const { claims, key, list, tenantId } = entry
      return cache.get(
        key,
        Effect.suspend(() =>
          Effect.flatMap(regional.right.host(tenantId), (host) => fetch(host, tenantId, list, claims))
        ),
        bypass
      )
    })
  }).pipe(Effect.annotateLogs("module", credential))

/** @internal */
export const unavailableError = (credential: string, reason: string): CredentialUnavailableError =>
  new CredentialUnavailableError({ credential, reason, code: "not-configured" })

/** A configuration error as a sentence naming the variables, never their values. @internal */
export const describeConfigError = (error: ConfigError.ConfigError): string => {
  const missing = new Set<string>()
  const invalid = new Set<string>()
  const walk = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        walk(e.left)
        walk(e.right)
        return
      case "MissingData":
        missing.add(e.path.join("."))
        return
      case "InvalidData":
      case "SourceUnavailable":
      case "Unsupported":
        invalid.add(e.path.join("."))
        return
    }
  }
  walk(error)
  const parts: Array<string> = []
  if (missing.size > 0) parts.push(`missing configuration: ${[...missing].join(", ")}`)
  if (invalid.size > 0) parts.push(`invalid configuration: ${[...invalid].join(", ")}`)
  return parts.length === 0 ? "the configuration could not be read" : `${parts.join("; ")}: set them and try again`
}

/**
 * A credential layer whose options come from `Config`: a configuration error becomes a credential that is
 * unavailable and names the variables, so the layer itself never fails (and can sit in a chain).
 *
 * @internal
 */
export const layerFromConfig = <A, R>(
  credential: string,
  config: Config.Config<A>,
  make: (options: A) => Effect.Effect<TokenCredential.Service, never, R>
): Layer.Layer<TokenCredential.TokenCredential, never, Exclude<R, Scope.Scope>> =>
  Layer.scoped(
    TokenCredential.TokenCredential,
    Effect.matchEffect(config, {
      onFailure: (error) => Effect.succeed(unavailable(credential, describeConfigError(error))),
      onSuccess: make
    })
  )

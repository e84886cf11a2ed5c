import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type { AccessToken } from "../AccessToken.js"
import * as AuthorityHost from "../AuthorityHost.js"
import type { ClientAuthenticationError } from "../IdentityError.js"
import { CredentialUnavailableError, InvalidArgumentError } from "../IdentityError.js"
import type { RetryOptions } from "../RetryOptions.js"
import * as TokenCredential from "../TokenCredential.js"
import type { FormValue, TokenRequest, TokenResponse } from "./aad.js"
import {
  encodeFields,
  entraClient,
  interpret,
  mergeClaims,
  requestToken,
  tokenEndpoint,
  tokenFormRequest
} from "./aad.js"
import { defaultRetryPolicy, resolvePolicy, sendDirect } from "./http.js"
import * as Peek from "./peek.js"
import * as Regional from "./regionalAuthority.js"
import * as TokenCacheEngine from "./tokenCache.js"

/** How many request shapes a credential remembers (in each of its two memo maps) before it starts them over. @internal */
export const memoLimit = 1024

/** The `Random` and `Tracer` every fiber has unless a program or test replaces them. */
const liveRandom = Context.get(DefaultServices.liveServices, Random.Random)
const liveTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

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
 * Resolves and validates what every Entra credential needs; fails with `InvalidArgumentError` (see
 * `orUnavailable`, which turns it into a credential that is unavailable).
 *
 * @internal
 */
export const resolve = (
  credential: string,
  options: BaseOptions
): Effect.Effect<Resolved, InvalidArgumentError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = entraClient(yield* HttpClient.HttpClient)
    const authorityHost = yield* AuthorityHost.resolve(options.authorityHost)
    const tenantId = options.tenantId?.trim() ?? ""
    if (tenantId === "") {
      return yield* invalid("tenantId", "no tenant id was given: set the tenantId option or AZURE_TENANT_ID")
    }
    yield* AuthorityHost.validateTenantId(tenantId)
    const clientId = options.clientId?.trim() ?? ""
    if (clientId === "") {
      return yield* invalid("clientId", "no client id was given: set the clientId option or AZURE_CLIENT_ID")
    }
    const additionallyAllowedTenants = options.additionallyAllowedTenants ??
      (yield* AuthorityHost.additionallyAllowedTenantsFromConfig)
    return {
      credential,
      authorityHost,
      tenantId,
      clientId,
      additionallyAllowedTenants,
      client,
      retryPolicy: options.retryPolicy
    }
  })

/** Fails with an `InvalidArgumentError`. @internal */
export const invalid = (argument: string, reason: string): Effect.Effect<never, InvalidArgumentError> =>
  Effect.fail(new InvalidArgumentError({ argument, reason }))

/** A credential that can never try, with the reason. @internal */
export const unavailable = (credential: string, reason: string): TokenCredential.Service =>
  TokenCredential.make(
    credential,
    () => Effect.fail(new CredentialUnavailableError({ credential, reason, code: "not-configured" }))
  )

/**
 * The one place where a credential's failed set-up becomes a credential that is unavailable: the layer still
 * builds (and can sit in a chain), and `getToken` fails with `CredentialUnavailableError` carrying the message.
 *
 * @internal
 */
export const orUnavailable = <R>(
  credential: string,
  setup: Effect.Effect<TokenCredential.Service, InvalidArgumentError, R>
): Effect.Effect<TokenCredential.Service, never, R> =>
  Effect.catchTag(setup, "InvalidArgumentError", (error) =>
    Effect.succeed(
      TokenCredential.make(credential, () =>
        Effect.fail(
          new CredentialUnavailableError({ credential, reason: error.message, code: "invalid-configuration" })
        ))
    ))

/** An `InvalidArgumentError` met while serving a `getToken` call, as the credential's error. @internal */
export const unavailableFor = (credential: string) => (error: InvalidArgumentError): CredentialUnavailableError =>
  new CredentialUnavailableError({ credential, reason: error.message, code: "invalid-configuration" })

/** Validates scopes and picks the tenant for one `getToken` call. @internal */
export const prepare = (
  resolved: Pick<Resolved, "credential" | "tenantId" | "additionallyAllowedTenants">,
  scopes: string | ReadonlyArray<string>,
  options: TokenCredential.GetTokenOptions | undefined
): Either.Either<{ scopes: ReadonlyArray<string>; tenantId: string }, CredentialUnavailableError> => {
  const validScopes = AuthorityHost.validateScopes(scopes)
  if (Either.isLeft(validScopes)) return Either.left(unavailableFor(resolved.credential)(validScopes.left))
  const tenant = AuthorityHost.resolveTenant({
    configured: resolved.tenantId,
    requested: options?.tenantId,
    additionallyAllowedTenants: resolved.additionallyAllowedTenants
  })
  if (Either.isLeft(tenant)) return Either.left(unavailableFor(resolved.credential)(tenant.left))
  return Either.right({ scopes: validScopes.right, tenantId: tenant.right })
}

/** Grant fields that never change, with their form encoding (`encodeFields`), made once per credential. */
interface FixedForm {
  readonly fields: Readonly<Record<string, FormValue>>
  readonly encoded: string
}

const fixedForm = (fields: Readonly<Record<string, FormValue>>): FixedForm => ({
  fields,
  encoded: encodeFields(fields)
})

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
  ) => Effect.Effect<Readonly<Record<string, FormValue>>, ClientAuthenticationError | CredentialUnavailableError>,
  /**
   * The client authentication at once, when it is fixed (a client secret): token requests may then be sent without
   * a fiber (see `TokenCache.Direct`). `undefined` when it must be made for every request (an assertion).
   */
  fixedClientAuth?: Readonly<Record<string, FormValue>> | undefined
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  orUnavailable(
    credential,
    Effect.gen(function*() {
      const resolved = yield* resolve(credential, options)
      const regionalEither = yield* Regional.make(resolved.client, resolved.authorityHost, options)
      if (Either.isLeft(regionalEither)) return yield* invalid("regionalAuthority", regionalEither.left)
      const regional = regionalEither.right
      const cache = yield* TokenCacheEngine.make({
        partition: `${credential}|${resolved.authorityHost}|${resolved.clientId}`,
        name: credential,
        // the remembered cached path of one scope keeps nothing but its key: the request is read back from it
        request: (key) => {
          const { enableCae, scopes, tenantId } = parseKeyOf(key)
          return fetch(tenantId, scopeOrder.get(key) ?? scopes, mergeClaims(undefined, enableCae))
        },
        direct: (key) => {
          if (fixed === undefined) return undefined
          const { enableCae, scopes, tenantId } = parseKeyOf(key)
          return directFor(fixed, tenantId, scopeOrder.get(key) ?? scopes, mergeClaims(undefined, enableCae))
        },
        storedKey: (key) => isScopeKey(key) ? TokenCacheEngine.cacheKey(resolved.tenantId, [key], false) : key
      })
      // In memory, the token of one scope for the credential's own tenant without CAE (the common request) is kept
      // under the scope string itself, the caller's own string: no key is built or kept for it. Every other key is a
      // `cacheKey`, which has a "|"; a scope with a "|" in it gets a `cacheKey` too, so the two kinds never meet.
      const isScopeKey = (key: string) => !key.includes("|")
      const keyOf = (tenantId: string, list: ReadonlyArray<string>, enableCae: boolean): string =>
        list.length === 1 && !enableCae && tenantId === resolved.tenantId && isScopeKey(list[0]!)
          ? list[0]!
          : TokenCacheEngine.cacheKey(tenantId, list, enableCae)
      // Several scopes (rare: a token is for one resource) are requested in the order of the key's first caller,
      // which the key (sorted) does not keep: kept here, for those keys only (bounded like the memo; past the bound,
      // sorted).
      const scopeOrder = new Map<string, ReadonlyArray<string>>()
      const parseKeyOf = (key: string) =>
        isScopeKey(key)
          ? { tenantId: resolved.tenantId, scopes: [key], enableCae: false }
          : TokenCacheEngine.parseKey(key)
      const fetch = (
        tenantId: string,
        scopes: ReadonlyArray<string>,
        claims: string | undefined,
        first?: TokenRequest["first"]
      ) =>
        Effect.flatMap(regional.host(tenantId), (authorityHost) =>
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
            ),
            first
          }).pipe(Effect.map((response: TokenResponse) => response.accessToken)))
      // With a fixed client authentication, the first attempt of a request can be made without a fiber: over the
      // Node client's direct exchange, with the live Clock and Random (the request id is then `crypto.randomUUID`),
      // and Effect's own tracer (whose spans no one reads: with any other tracer the request has its span). Its token
      // is the request's result; anything else (an error, a retry) continues on the usual path from that attempt.
      const policy = resolvePolicy(resolved.retryPolicy, defaultRetryPolicy)
      // the grant fields, and their form encoding, made once: every direct request sends them as they are
      const fixed = fixedClientAuth === undefined ? undefined : fixedForm({
        client_id: resolved.clientId,
        grant_type: "client_credentials",
        ...fixedClientAuth
      })
      const directFor = (
        { encoded, fields }: FixedForm,
        tenantId: string,
        scopes: ReadonlyArray<string>,
        claims: string | undefined
      ): TokenCacheEngine.Direct<ClientAuthenticationError | CredentialUnavailableError> => ({
        start: (fiber, done) => {
          const services = fiber.getFiberRef(DefaultServices.currentServices)
          const host = regional.hostNow(tenantId)
          if (
            host === undefined || Context.get(services, Random.Random) !== liveRandom ||
            Context.get(services, Tracer.Tracer) !== liveTracer
          ) return undefined
          const request = tokenFormRequest(
            tokenEndpoint(host, tenantId),
            globalThis.crypto.randomUUID(),
            encoded,
            scopes.join(" "),
            claims
          )
          const clock = Context.get(services, Clock.Clock)
          return sendDirect(resolved.client, request, policy, clock, fiber.currentContext, (outcome) => {
            const handOver = () =>
              done({ _tag: "Continue", fetch: fetch(tenantId, scopes, claims, { outcome, fields }) })
            if (
              Either.isRight(outcome.result) && outcome.result.right.status >= 200 &&
              outcome.result.right.status < 300
            ) {
              const answer = interpret(credential, outcome)
              if (Either.isRight(answer)) return done({ _tag: "Token", token: answer.right.accessToken })
            }
            handOver()
          })
        }
      })
      // Validated requests by their raw input: the cached path does one Map lookup instead of re-validating,
      // re-sorting and re-merging on every call, and runs the effect `cache.cached` made for the request's key: the
      // cache entry itself, so a remembered request costs a slot in one of these maps and nothing else. Bounded;
      // claims (always a network request) are not memoised. A single scope string without options (the common
      // call) is looked up by the string itself: no key is built.
      type Cached = Effect.Effect<AccessToken, ClientAuthenticationError | CredentialUnavailableError>
      const memo = new Map<string, Cached>()
      const plain = new Map<string, Cached>()
      const remember = <A>(map: Map<string, A>, memoKey: string, value: A) => {
        if (map.size >= memoLimit) map.clear()
        map.set(memoKey, value)
      }
      const lookup = (
        scopes: string | ReadonlyArray<string>,
        getTokenOptions: TokenCredential.GetTokenOptions | undefined
      ): Cached | CredentialUnavailableError => {
        const noOptions = typeof scopes === "string" && getTokenOptions?.tenantId === undefined &&
          getTokenOptions?.enableCae !== true
        if (noOptions) {
          const hit = plain.get(scopes)
          if (hit !== undefined) return hit
        }
        const enableCae = getTokenOptions?.enableCae === true
        // The count keeps ["a", "b"] and the invalid ["a\u0001b"] apart: a hit must never skip validation. A plain
        // scope string is remembered in `plain` only (by the caller's own string), so no second key is kept for it.
        // Keys are built with `join`: one flat string, not a rope of template-literal pieces.
        const memoKey = noOptions ? undefined : [
          typeof scopes === "string" ? 1 : scopes.length,
          typeof scopes === "string" ? scopes : scopes.join("\u0001"),
          getTokenOptions?.tenantId ?? "",
          enableCae
        ].join("\u0002")
        const hit = memoKey === undefined ? undefined : memo.get(memoKey)
        if (hit !== undefined) return hit
        const prepared = prepare(resolved, scopes, getTokenOptions)
        if (Either.isLeft(prepared)) return prepared.left
        const { scopes: list, tenantId } = prepared.right
        const key = keyOf(tenantId, list, enableCae)
        if (list.length > 1 && !scopeOrder.has(key)) remember(scopeOrder, key, list)
        const cached = cache.cached(key)
        if (memoKey === undefined) remember(plain, scopes as string, cached)
        else remember(memo, memoKey, cached)
        return cached
      }
      const hasClaims = (getTokenOptions: TokenCredential.GetTokenOptions | undefined) =>
        getTokenOptions?.claims !== undefined && getTokenOptions.claims.trim() !== ""
      const service = TokenCredential.make(credential, (scopes, getTokenOptions) => {
        if (hasClaims(getTokenOptions)) {
          // a claims challenge: validated every time, never memoised, always a request (stored for later callers)
          const prepared = prepare(resolved, scopes, getTokenOptions)
          if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
          const { scopes: list, tenantId } = prepared.right
          const enableCae = getTokenOptions?.enableCae === true
          const claims = mergeClaims(getTokenOptions?.claims, enableCae)
          return cache.get(
            keyOf(tenantId, list, enableCae),
            Effect.suspend(() => fetch(tenantId, list, claims)),
            true
          )
        }
        const cached = lookup(scopes, getTokenOptions)
        return cached instanceof CredentialUnavailableError ? Effect.fail(cached) : cached
      })
      return Peek.register(service, (scopes, getTokenOptions, nowMillis) => {
        if (hasClaims(getTokenOptions)) return undefined
        const cached = lookup(scopes, getTokenOptions)
        return cached instanceof CredentialUnavailableError ? undefined : cache.peekCached(cached, nowMillis)
      })
    })
  ).pipe(Effect.annotateLogs("module", credential))

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

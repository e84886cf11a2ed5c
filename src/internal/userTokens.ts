/**
 * The engine shared by the user credentials (authorization code, device code, username/password): one initial
 * grant that signs the user in, then the refresh token for every other scope and every refresh.
 *
 * - Access tokens live in the token cache engine, per tenant, scopes and CAE flag (memory only: a persisted token
 *   would need the account in its key, so the `TokenCache` persistence hook is not used by user credentials).
 * - The refresh token is kept as `Redacted`. Refresh-token grants run one at a time, always with the newest refresh
 *   token: a rotated one replaces the old one before the next grant starts (servers that detect the replay of a
 *   rotated refresh token revoke the whole grant). `invalid_grant` drops it.
 * - The initial grant is single-flight across every scope: concurrent first callers share one grant. A single-use
 *   grant (an authorization code) is taken before it is sent, so it is never sent twice, even after a failure.
 * - The initial grant runs in a fiber of the layer's scope. When `cancelWhenAbandoned` is set (device code
 *   polling), it is interrupted as soon as every caller waiting for it has been interrupted.
 * - Every grant's `client_info` / `id_token` name the account: its `AuthenticationRecord`. With a `TokenCache` in the
 *   context, the refresh token is also saved there (encrypted by the cache), per account (home account id), so a
 *   credential given the record later finds it after a restart. `disableAutomaticAuthentication` turns "the user
 *   must sign in" into `AuthenticationRequiredError`; `authenticate` always runs the initial grant.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { AccessToken } from "../AccessToken.js"
import * as AuthenticationRecord from "../AuthenticationRecord.js"
import {
  AuthenticationRequiredError,
  ClientAuthenticationError,
  CredentialUnavailableError,
  type InvalidArgumentError
} from "../IdentityError.js"
import * as TokenCredential from "../TokenCredential.js"
import type * as UserCredential from "../UserCredential.js"
import type { FormValue, TokenResponse } from "./aad.js"
import { mergeClaims, requestToken } from "./aad.js"
import type { BaseOptions, Resolved } from "./confidentialClient.js"
import { prepare, resolve } from "./confidentialClient.js"
import * as SingleFlight from "./singleFlight.js"
import { TokenCache } from "./tokenCache.js"
import * as TokenCacheEngine from "./tokenCache.js"
import { unavailableUser } from "./userCredentials.js"

/** @internal */
export type GrantError = ClientAuthenticationError | CredentialUnavailableError

/** @internal */
export type UserError = GrantError | AuthenticationRequiredError

/** The scopes MSAL adds to every user-flow request. @internal */
export const oidcScopes: ReadonlyArray<string> = ["openid", "profile", "offline_access"]

/** The requested scopes plus `openid profile offline_access`, without duplicates. @internal */
export const withUserScopes = (scopes: ReadonlyArray<string>): ReadonlyArray<string> => {
  const out = [...scopes]
  for (const s of oidcScopes) if (!out.includes(s)) out.push(s)
  return out
}

/** What one network request of the initial grant is for. @internal */
export interface GrantRequest {
  readonly tenantId: string
  /** The scopes asked for by the caller, plus `openid profile offline_access`. */
  readonly scopes: ReadonlyArray<string>
  readonly claims: string | undefined
}

/** How a user credential signs the user in the first time. @internal */
export interface InitialGrant {
  /** False for a grant that can be used once only (an authorization code). */
  readonly reusable: boolean
  /** Interrupt the grant when every caller waiting for it has been interrupted (device code polling). */
  readonly cancelWhenAbandoned: boolean
  readonly run: (request: GrantRequest) => Effect.Effect<TokenResponse, GrantError>
  /** Why the user must sign in again once nothing is left, e.g. "the authorization code was already redeemed". */
  readonly exhausted: string
}

/** @internal */
export interface UserOptions extends BaseOptions {
  /** Sent with every grant when given (a confidential client). */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** The account to use silently: its refresh token is looked up in the `TokenCache` (if any). */
  readonly authenticationRecord?: AuthenticationRecord.AuthenticationRecord | undefined
  /** Fail with `AuthenticationRequiredError` instead of running the initial grant from `getToken`. */
  readonly disableAutomaticAuthentication?: boolean | undefined
}

/** What only the credentials that offer `authenticate` do. @internal */
export interface AccountOptions {
  /** Keep the refresh token in the context's `TokenCache`, per account (off: memory only). */
  readonly persistRefreshTokens: boolean
}

/** A user credential's two faces. @internal */
export type UserServices = UserCredential.Services

/** How long a saved refresh token is kept: Entra's refresh tokens live up to 90 days. @internal */
export const refreshTokenLifetimeMillis = 90 * 24 * 60 * 60 * 1000

/** The persistent cache key of an account's refresh token, shared by the user credentials of one app. @internal */
export const refreshTokenKey = (authority: string, clientId: string, homeAccountId: string): string =>
  `user-refresh-token|${authority.toLowerCase()}|${clientId.toLowerCase()}|${homeAccountId}`

const decodeJsonObject = (base64url: string): Record<string, unknown> | undefined => {
  const text = Encoding.decodeBase64UrlString(base64url)
  if (Either.isLeft(text)) return undefined
  try {
    const value: unknown = JSON.parse(text.right)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}

const stringField = (o: Record<string, unknown> | undefined, name: string): string | undefined => {
  const v = o?.[name]
  return typeof v === "string" && v !== "" ? v : undefined
}

/** `host[:port]` of an authority host URL: the record's `authority`. @internal */
export const authorityOf = (authorityHost: string): string => {
  try {
    return new URL(authorityHost).host
  } catch {
    return authorityHost
  }
}

/**
 * The account a token response names: `homeAccountId` from `client_info` (`uid.utid`), else the ID token's
 * `oid.tid`; the username from the ID token (`preferred_username`, else `upn`); the tenant from the ID token
 * (`tid`), else `client_info`'s `utid`, else the tenant asked for.
 *
 * @internal
 */
export const accountOf = (
  response: TokenResponse,
  authorityHost: string,
  clientId: string,
  requestTenant: string
): Option.Option<AuthenticationRecord.AuthenticationRecord> => {
  const info = Option.isSome(response.clientInfo) ? decodeJsonObject(response.clientInfo.value) : undefined
  const idPayload = Option.isSome(response.idToken)
    ? decodeJsonObject(response.idToken.value.split(".")[1] ?? "")
    : undefined
  const uid = stringField(info, "uid")
  const utid = stringField(info, "utid")
  const oid = stringField(idPayload, "oid")
  const tid = stringField(idPayload, "tid")
  const homeAccountId = uid !== undefined && utid !== undefined
    ? `${uid}.${utid}`
    : oid !== undefined && tid !== undefined
    ? `${oid}.${tid}`
    : undefined
  if (homeAccountId === undefined) return Option.none()
  return Option.some(
    new AuthenticationRecord.AuthenticationRecord({
      authority: authorityOf(authorityHost),
      homeAccountId,
      clientId,
      tenantId: tid ?? utid ?? requestTenant,
      username: stringField(idPayload, "preferred_username") ?? stringField(idPayload, "upn") ?? "",
      version: AuthenticationRecord.version
    })
  )
}

/** Everything the grants of one user credential share. @internal */
export interface UserContext {
  readonly resolved: Resolved
  /** `client_id`, `client_info=1` and `client_secret` when configured: the fields every user grant sends. */
  readonly clientFields: Readonly<Record<string, FormValue>>
  /** POSTs a token request to the tenant's token endpoint with `fields` plus the client fields. */
  readonly request: (
    request: GrantRequest,
    fields: Readonly<Record<string, FormValue>>
  ) => Effect.Effect<TokenResponse, GrantError>
}

class NeedsInitial extends Data.TaggedError("NeedsInitial")<{ readonly reason: string | undefined }> {}

/**
 * Builds a user credential from its initial grant. `initial` may refuse the options with `InvalidArgumentError` (the
 * layer still builds; `getToken` is then unavailable).
 *
 * @internal
 */
export const make = (
  credential: string,
  options: UserOptions,
  initial: (context: UserContext) => Effect.Effect<InitialGrant, InvalidArgumentError>
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.map(makeUser(credential, options, initial, { persistRefreshTokens: false }), (services) => services.credential)

/**
 * Builds a user credential and its `UserCredential` side (`authenticate`, the account's record). Options `resolve`
 * or `initial` refuse (`InvalidArgumentError`) give a credential whose both faces are unavailable.
 *
 * @internal
 */
export const makeUser = (
  credential: string,
  options: UserOptions,
  initial: (context: UserContext) => Effect.Effect<InitialGrant, InvalidArgumentError>,
  accountOptions: AccountOptions = { persistRefreshTokens: true }
): Effect.Effect<UserServices, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(credential, options)
    const clientFields: Record<string, FormValue> = { client_id: resolved.clientId, client_info: "1" }
    if (options.clientSecret !== undefined) clientFields.client_secret = options.clientSecret
    const context: UserContext = {
      resolved,
      clientFields,
      request: (request, fields) =>
        requestToken(resolved.client, {
          credential,
          authorityHost: resolved.authorityHost,
          tenantId: request.tenantId,
          scopes: request.scopes,
          claims: request.claims,
          retryPolicy: resolved.retryPolicy,
          form: Effect.succeed({ ...clientFields, ...fields })
        })
    }
    const grant = yield* initial(context)
    const persistence = accountOptions.persistRefreshTokens ? yield* Effect.serviceOption(TokenCache) : Option.none()
    const authority = authorityOf(resolved.authorityHost)

    const scope = yield* Effect.scope
    // Memory only: without the account in the key, a persisted token could be served to another user.
    const cache = yield* TokenCacheEngine.make({
      partition: `${credential}|${resolved.authorityHost}|${resolved.clientId}`,
      name: credential
    }).pipe(Effect.mapInputContext((ctx: Context.Context<Scope.Scope>) => Context.omit(TokenCache)(ctx)))

    let refreshToken: Option.Option<Redacted.Redacted<string>> = Option.none()
    let account: Option.Option<AuthenticationRecord.AuthenticationRecord> = Option.fromNullable(
      options.authenticationRecord
    )
    /** Whether the persistent cache was already asked for the record's refresh token. */
    let loadedFromCache = false
    let grantUsed = false
    let lastRejection: string | undefined
    const refreshLock = yield* Effect.makeSemaphore(1)

    /** Keeps the refresh token and the account a grant answered with; saves the refresh token per account. */
    const keep = (response: TokenResponse, requestTenant: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (Option.isSome(response.refreshToken)) refreshToken = response.refreshToken
        const named = accountOf(response, resolved.authorityHost, resolved.clientId, requestTenant)
        if (Option.isSome(named)) account = named
        if (Option.isNone(persistence) || Option.isNone(response.refreshToken) || Option.isNone(account)) {
          return Effect.void
        }
        const key = refreshTokenKey(authority, resolved.clientId, account.value.homeAccountId)
        const secret = response.refreshToken.value
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
          persistence.value.save(key, {
            token: secret,
            tokenType: "refresh_token",
            expiresOn: DateTime.unsafeMake(now + refreshTokenLifetimeMillis),
            refreshOn: Option.none()
          })).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning(`${credential}: the refresh token was not saved in the token cache: ${error.message}`)
            )
          )
      })

    /** The record's refresh token from the persistent cache, once, when there is none in memory. */
    const loadSaved: Effect.Effect<void, CredentialUnavailableError> = Effect.suspend(() => {
      if (Option.isSome(refreshToken) || loadedFromCache || Option.isNone(persistence)) return Effect.void
      if (Option.isNone(account)) return Effect.void
      loadedFromCache = true
      const key = refreshTokenKey(authority, resolved.clientId, account.value.homeAccountId)
      return persistence.value.load(key).pipe(
        Effect.mapError((error) => new CredentialUnavailableError({ credential, reason: error.message })),
        Effect.map((saved) => {
          if (Option.isSome(saved) && Option.isNone(refreshToken)) {
            refreshToken = Option.some(Redacted.make(Redacted.value(saved.value.token)))
          }
        })
      )
    })

    const signInAgain = (extra?: string) =>
      new ClientAuthenticationError({
        credential,
        reason: `no refresh token is left${extra ? ` (${extra})` : ""} and ${grant.exhausted}: the user must ` +
          `sign in again`
      })

    /** Runs in the cache engine's fiber: a refresh-token grant, or `NeedsInitial` when there is no refresh token. */
    const refresh = (request: GrantRequest): Effect.Effect<AccessToken, GrantError | NeedsInitial> =>
      refreshLock.withPermits(1)(Effect.zipRight(
        loadSaved,
        Effect.suspend(() => {
          if (Option.isNone(refreshToken)) return Effect.fail(new NeedsInitial({ reason: lastRejection }))
          const used = refreshToken.value
          return context.request(request, { grant_type: "refresh_token", refresh_token: used }).pipe(
            Effect.tap((response) => keep(response, request.tenantId)),
            Effect.map((response) => response.accessToken),
            Effect.catchIf(
              (error): error is ClientAuthenticationError =>
                error._tag === "ClientAuthenticationError" && error.error === "invalid_grant",
              (error) => {
                if (Option.isSome(refreshToken) && refreshToken.value === used) refreshToken = Option.none()
                lastRejection = `the refresh token was rejected: ${error.reason}`
                return Effect.fail(new NeedsInitial({ reason: lastRejection }))
              }
            )
          )
        })
      ))

    // The initial grant: one at a time, shared by every caller (whatever its scopes), in a fiber of the layer's scope.
    const initialGrant = SingleFlight.make<{ readonly key: string; readonly token: AccessToken }, GrantError>({
      scope,
      cancelWhenAbandoned: grant.cancelWhenAbandoned
    })

    /** Joins the initial grant in flight, or starts it for `key`. */
    const join = (key: string, request: GrantRequest): Effect.Effect<
      { readonly key: string; readonly token: AccessToken },
      GrantError
    > =>
      initialGrant.run(Effect.suspend(() => {
        if (!grant.reusable && grantUsed) return Effect.fail(signInAgain(lastRejection))
        grantUsed = true
        return grant.run(request).pipe(
          Effect.tap((response) => {
            lastRejection = undefined
            return keep(response, request.tenantId)
          }),
          Effect.map((response) => response.accessToken),
          Effect.tap((token) => cache.get(key, Effect.succeed(token), true)),
          Effect.map((token) => ({ key, token }))
        )
      }))

    const required = (request: GrantRequest, scopes: ReadonlyArray<string>, reason: string | undefined) =>
      new AuthenticationRequiredError({
        credential,
        reason: `automatic authentication is disabled and no signed-in account could be used silently${
          reason ? ` (${reason})` : Option.isNone(account) ? " (no authenticationRecord was given)" : ""
        }: call authenticate() to sign the user in`,
        scopes: [...scopes],
        ...(request.claims !== undefined ? { claims: request.claims } : {})
      })

    const getToken = (
      key: string,
      request: GrantRequest,
      scopes: ReadonlyArray<string>,
      bypass: boolean,
      attempts: number
    ): Effect.Effect<AccessToken, UserError> =>
      cache.get(key, refresh(request), bypass).pipe(
        Effect.catchTag("NeedsInitial", (needs) =>
          options.disableAutomaticAuthentication === true
            ? Effect.fail(required(request, scopes, needs.reason))
            : attempts >= 2
            ? Effect.fail(signInAgain(needs.reason))
            : Effect.flatMap(
              join(key, request),
              (result) =>
                result.key === key
                  ? Effect.succeed(result.token)
                  // The grant in flight was for other scopes: now that it has given a refresh token, use it.
                  : getToken(key, request, scopes, bypass, attempts + 1)
            ))
      )

    const tokenCredential = TokenCredential.make(credential, (scopes, getTokenOptions) => {
      const prepared = prepare(resolved, scopes, getTokenOptions)
      if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
      const { scopes: list, tenantId } = prepared.right
      const enableCae = getTokenOptions?.enableCae === true
      const bypass = getTokenOptions?.claims !== undefined && getTokenOptions.claims.trim() !== ""
      const request: GrantRequest = {
        tenantId,
        scopes: withUserScopes(list),
        claims: mergeClaims(getTokenOptions?.claims, enableCae)
      }
      return getToken(TokenCacheEngine.cacheKey(tenantId, list, enableCae), request, list, bypass, 0).pipe(
        Effect.withSpan(`${credential}.getToken`, {
          attributes: {
            "azure.identity.credential": credential,
            "azure.identity.tenant": tenantId,
            "azure.identity.scopes": list.join(" ")
          }
        })
      )
    })

    const authenticate: UserCredential.Service["authenticate"] = (scopes, authenticateOptions) =>
      Effect.gen(function*() {
        const prepared = prepare(resolved, scopes, authenticateOptions)
        if (Either.isLeft(prepared)) return yield* Effect.fail(prepared.left)
        const { scopes: list, tenantId } = prepared.right
        const request: GrantRequest = {
          tenantId,
          scopes: withUserScopes(list),
          claims: mergeClaims(authenticateOptions?.claims, false)
        }
        // Always the initial grant: the user signs in now.
        yield* join(TokenCacheEngine.cacheKey(tenantId, list, false), request)
        if (Option.isNone(account)) {
          return yield* Effect.fail(
            new ClientAuthenticationError({
              credential,
              reason: "the sign-in succeeded but the token response named no account (neither client_info nor an " +
                "id_token with oid and tid): check that the authority is Microsoft Entra ID"
            })
          )
        }
        return account.value
      }).pipe(
        Effect.withSpan(`${credential}.authenticate`, {
          attributes: { "azure.identity.credential": credential }
        })
      )

    return {
      credential: tokenCredential,
      user: { name: credential, authenticate, record: Effect.sync(() => account) }
    } satisfies UserServices
  }).pipe(
    Effect.catchTag("InvalidArgumentError", (error) => Effect.succeed(unavailableUser(credential, error.message))),
    Effect.annotateLogs("module", credential)
  )

// the layer and the unavailable credential are loaded with the public modules (userCredentials.ts)
export { layer, unavailableUser } from "./userCredentials.js"

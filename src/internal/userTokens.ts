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
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { AccessToken } from "../AccessToken.js"
import {
  ClientAuthenticationError,
  type CredentialUnavailableError,
  type InvalidArgumentError
} from "../IdentityError.js"
import * as TokenCredential from "../TokenCredential.js"
import type { FormValue, TokenResponse } from "./aad.js"
import { mergeClaims, requestToken } from "./aad.js"
import type { BaseOptions, Resolved } from "./confidentialClient.js"
import { orUnavailable, prepare, resolve } from "./confidentialClient.js"
import * as SingleFlight from "./singleFlight.js"
import { TokenCache } from "./tokenCache.js"
import * as TokenCacheEngine from "./tokenCache.js"

/** @internal */
export type GrantError = ClientAuthenticationError | CredentialUnavailableError

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
 * Builds a user credential from its initial grant. `initial` may refuse the options with a description (the layer
 * still builds; `getToken` is then unavailable).
 *
 * @internal
 */
export const make = (
  credential: string,
  options: UserOptions,
  initial: (context: UserContext) => Effect.Effect<InitialGrant, InvalidArgumentError>
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  orUnavailable(
    credential,
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

      const scope = yield* Effect.scope
      // Memory only: without the account in the key, a persisted token could be served to another user.
      const cache = yield* TokenCacheEngine.make({
        partition: `${credential}|${resolved.authorityHost}|${resolved.clientId}`,
        name: credential
      }).pipe(Effect.mapInputContext((ctx: Context.Context<Scope.Scope>) => Context.omit(TokenCache)(ctx)))

      let refreshToken: Option.Option<Redacted.Redacted<string>> = Option.none()
      let grantUsed = false
      let lastRejection: string | undefined
      const refreshLock = yield* Effect.makeSemaphore(1)

      const keep = (response: TokenResponse) => {
        if (Option.isSome(response.refreshToken)) refreshToken = response.refreshToken
      }

      const signInAgain = (extra?: string) =>
        new ClientAuthenticationError({
          credential,
          reason: `no refresh token is left${extra ? ` (${extra})` : ""} and ${grant.exhausted}: the user must ` +
            `sign in again`
        })

      /** Runs in the cache engine's fiber: a refresh-token grant, or `NeedsInitial` when there is no refresh token. */
      const refresh = (request: GrantRequest): Effect.Effect<AccessToken, GrantError | NeedsInitial> =>
        refreshLock.withPermits(1)(Effect.suspend(() => {
          if (Option.isNone(refreshToken)) return Effect.fail(new NeedsInitial({ reason: lastRejection }))
          const used = refreshToken.value
          return context.request(request, { grant_type: "refresh_token", refresh_token: used }).pipe(
            Effect.tap(keep),
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
        }))

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
              keep(response)
              lastRejection = undefined
            }),
            Effect.map((response) => response.accessToken),
            Effect.tap((token) => cache.get(key, Effect.succeed(token), true)),
            Effect.map((token) => ({ key, token }))
          )
        }))

      const getToken = (
        key: string,
        request: GrantRequest,
        bypass: boolean,
        attempts: number
      ): Effect.Effect<AccessToken, GrantError> =>
        cache.get(key, refresh(request), bypass).pipe(
          Effect.catchTag("NeedsInitial", (needs) =>
            attempts >= 2
              ? Effect.fail(signInAgain(needs.reason))
              : Effect.flatMap(
                join(key, request),
                (result) =>
                  result.key === key
                    ? Effect.succeed(result.token)
                    // The grant in flight was for other scopes: now that it has given a refresh token, use it.
                    : getToken(key, request, bypass, attempts + 1)
              ))
        )

      return TokenCredential.make(credential, (scopes, getTokenOptions) => {
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
        return getToken(TokenCacheEngine.cacheKey(tenantId, list, enableCae), request, bypass, 0).pipe(
          Effect.withSpan(`${credential}.getToken`, {
            attributes: {
              "azure.identity.credential": credential,
              "azure.identity.tenant": tenantId,
              "azure.identity.scopes": list.join(" ")
            }
          })
        )
      })
    })
  ).pipe(Effect.annotateLogs("module", credential))

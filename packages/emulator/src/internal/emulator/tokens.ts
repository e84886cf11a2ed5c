/**
 * The access tokens, ID tokens and client info the emulator issues: RS256 JWTs with the claims real Entra tokens
 * carry (`aud`, `iss`, `tid`, `oid`, `sub`, `appid`, `azp`, `iat`, `nbf`, `exp`, `ver`, `idtyp`, `scp`, `upn`, …).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { randomUuid } from "../ids.js"
import { sign } from "./jwt.js"
import type { ResolvedApp, ResolvedIdentity, ResolvedUser, State } from "./state.js"

/** OpenID Connect scopes: never an audience. @internal */
export const oidcScopes: ReadonlySet<string> = new Set(["openid", "profile", "offline_access", "email"])

/** Microsoft Graph's app id: the audience of bare scopes such as `User.Read`. @internal */
export const graphAppId = "00000003-0000-0000-c000-000000000000"

/** The resource (audience) of a scope: `https://vault.azure.net/.default` → `https://vault.azure.net`. @internal */
export const audienceOf = (scope: string): string => {
  if (scope.endsWith("/.default")) return scope.slice(0, -"/.default".length)
  const slash = scope.lastIndexOf("/")
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(scope) || scope.startsWith("api://")) {
    const scheme = scope.indexOf("://") + 3
    return slash >= scheme ? scope.slice(0, slash) : scope
  }
  return graphAppId
}

/** The resource scopes of a request (OpenID scopes removed). @internal */
export const resourceScopes = (scopes: ReadonlyArray<string>): ReadonlyArray<string> =>
  scopes.filter((s) => !oidcScopes.has(s.toLowerCase()))

/** The `scp` claim of a delegated token: the permission names of the scopes. @internal */
const delegatedPermissions = (scopes: ReadonlyArray<string>): string => {
  const names = resourceScopes(scopes).map((s) => {
    if (s.endsWith("/.default")) return "user_impersonation"
    const slash = s.lastIndexOf("/")
    return slash >= 0 ? s.slice(slash + 1) : s
  })
  return names.length === 0 ? "User.Read" : [...new Set(names)].join(" ")
}

/** @internal */
export interface Issued {
  readonly accessToken: string
  readonly issuedAtSeconds: number
  readonly expiresOnSeconds: number
  readonly lifetimeSeconds: number
}

/** @internal */
export const issuer = (baseUrl: string, tenantId: string): string => `${baseUrl}/${tenantId}/v2.0`

const common = (
  state: State,
  baseUrl: string,
  tenantId: string,
  audience: string,
  lifetimeSeconds: number
) =>
  Effect.gen(function*() {
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const uti = yield* randomUuid
    return {
      now,
      claims: {
        aud: audience,
        iss: issuer(baseUrl, tenantId),
        iat: now,
        nbf: now,
        exp: now + lifetimeSeconds,
        tid: tenantId,
        uti: uti.replace(/-/g, "").slice(0, 22),
        ver: "2.0"
      }
    }
  }).pipe(Effect.map((r) => ({ ...r, key: state.key })))

/** An app-only token (client credentials, managed identity). @internal */
export const issueAppToken = (
  state: State,
  options: {
    readonly baseUrl: string
    readonly tenantId: string
    readonly audience: string
    readonly appId: string
    readonly objectId: string
    readonly lifetimeSeconds: number
    readonly extra?: Record<string, unknown>
  }
): Effect.Effect<Issued> =>
  Effect.gen(function*() {
    const { claims, key, now } = yield* common(
      state,
      options.baseUrl,
      options.tenantId,
      options.audience,
      options.lifetimeSeconds
    )
    const accessToken = yield* sign(key, {
      ...claims,
      oid: options.objectId,
      sub: options.objectId,
      appid: options.appId,
      azp: options.appId,
      appidacr: "1",
      azpacr: "1",
      idtyp: "app",
      ...options.extra
    })
    return {
      accessToken,
      issuedAtSeconds: now,
      expiresOnSeconds: now + options.lifetimeSeconds,
      lifetimeSeconds: options.lifetimeSeconds
    }
  })

/** A delegated (user) token. @internal */
export const issueUserToken = (
  state: State,
  options: {
    readonly baseUrl: string
    readonly tenantId: string
    readonly app: Pick<ResolvedApp, "clientId">
    readonly user: ResolvedUser
    readonly scopes: ReadonlyArray<string>
    readonly lifetimeSeconds: number
    readonly audience?: string | undefined
  }
): Effect.Effect<Issued> =>
  Effect.gen(function*() {
    const scopes = resourceScopes(options.scopes)
    const audience = options.audience ?? (scopes.length === 0 ? graphAppId : audienceOf(scopes[0]!))
    const { claims, key, now } = yield* common(
      state,
      options.baseUrl,
      options.tenantId,
      audience,
      options.lifetimeSeconds
    )
    const accessToken = yield* sign(key, {
      ...claims,
      oid: options.user.objectId,
      sub: options.user.objectId,
      appid: options.app.clientId,
      azp: options.app.clientId,
      idtyp: "user",
      scp: delegatedPermissions(options.scopes),
      upn: options.user.username,
      unique_name: options.user.username,
      preferred_username: options.user.username,
      name: options.user.displayName
    })
    return {
      accessToken,
      issuedAtSeconds: now,
      expiresOnSeconds: now + options.lifetimeSeconds,
      lifetimeSeconds: options.lifetimeSeconds
    }
  })

/** An ID token for a user signing in to an app. @internal */
export const issueIdToken = (
  state: State,
  options: {
    readonly baseUrl: string
    readonly tenantId: string
    readonly clientId: string
    readonly user: ResolvedUser
    readonly lifetimeSeconds: number
  }
): Effect.Effect<string> =>
  Effect.gen(function*() {
    const { claims, key } = yield* common(
      state,
      options.baseUrl,
      options.tenantId,
      options.clientId,
      options.lifetimeSeconds
    )
    const { uti: _uti, ...rest } = claims
    return yield* sign(key, {
      ...rest,
      oid: options.user.objectId,
      sub: options.user.objectId,
      preferred_username: options.user.username,
      name: options.user.displayName
    })
  })

/** `client_info`: base64url JSON `{uid, utid}`, from which MSAL builds the home account id. @internal */
export const clientInfo = (user: ResolvedUser, tenantId: string): string =>
  Buffer.from(JSON.stringify({ uid: user.objectId, utid: tenantId })).toString("base64url")

/** A managed identity's token. @internal */
export const issueManagedIdentityToken = (
  state: State,
  options: { readonly baseUrl: string; readonly identity: ResolvedIdentity; readonly resource: string }
): Effect.Effect<Issued> =>
  issueAppToken(state, {
    baseUrl: options.baseUrl,
    tenantId: state.settings.tenantId,
    audience: options.resource,
    appId: options.identity.clientId,
    objectId: options.identity.objectId,
    lifetimeSeconds: state.settings.managedIdentityTokenLifetimeSeconds,
    extra: { xms_mirid: options.identity.resourceId, appidacr: "2", azpacr: "2" }
  })

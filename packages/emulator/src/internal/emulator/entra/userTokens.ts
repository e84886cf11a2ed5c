/**
 * The answer of every user flow (authorization code, refresh token, device code, password, on-behalf-of): an
 * access token, and a refresh token, ID token and client info as Entra gives them.
 *
 * @internal
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { randomUuid } from "../../ids.js"
import { json, present } from "../http.js"
import type { ResolvedApp, ResolvedUser, State } from "../state.js"
import { clientInfo, issueIdToken, issueUserToken, oidcScopes, resourceScopes } from "../tokens.js"
import type { ClientForm, TokenRequest } from "./common.js"
import { lifetimeFields } from "./common.js"

/** Mints a refresh token for a user of an app, as a sign-in with `offline_access` would. @internal */
export const mintRefreshToken = (
  state: State,
  grant: { readonly clientId: string; readonly username: string; readonly tenantId: string }
): Effect.Effect<string> =>
  Effect.map(Effect.zip(randomUuid, randomUuid), ([a, b]) => {
    const token = `1.emulator-rt.${a}${b}`.replace(/-/g, "")
    state.refreshTokens.set(token, { ...grant, revoked: false })
    return token
  })

/** Answers a user flow: access token, and refresh token, ID token and client info as Entra would. @internal */
export const userTokens = (
  state: State,
  request: TokenRequest,
  form: ClientForm,
  options: {
    readonly app: ResolvedApp
    readonly user: ResolvedUser
    readonly tenantId: string
    readonly scopes: ReadonlyArray<string>
    readonly alwaysRefreshToken: boolean
  }
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.gen(function*() {
    const lifetimeSeconds = state.settings.tokenLifetimeSeconds
    const issued = yield* issueUserToken(state, {
      baseUrl: request.baseUrl,
      tenantId: options.tenantId,
      app: options.app,
      user: options.user,
      scopes: options.scopes,
      lifetimeSeconds
    })
    const lower = options.scopes.map((s) => s.toLowerCase())
    const refreshToken = options.alwaysRefreshToken || lower.includes("offline_access")
      ? yield* mintRefreshToken(state, {
        clientId: options.app.clientId,
        username: options.user.username,
        tenantId: options.tenantId
      })
      : undefined
    const idToken = lower.includes("openid")
      ? yield* issueIdToken(state, {
        baseUrl: request.baseUrl,
        tenantId: options.tenantId,
        clientId: options.app.clientId,
        user: options.user,
        lifetimeSeconds
      })
      : undefined
    const resource = resourceScopes(options.scopes)
    const granted = [...(resource.length === 0 ? ["User.Read"] : resource), ...lower.filter((s) => oidcScopes.has(s))]
    return json(200, {
      ...lifetimeFields(state, issued),
      scope: granted.join(" "),
      access_token: issued.accessToken,
      ...(refreshToken !== undefined ? { refresh_token: refreshToken } : {}),
      ...(idToken !== undefined ? { id_token: idToken } : {}),
      ...(present(form.client_info) === "1" ? { client_info: clientInfo(options.user, options.tenantId) } : {})
    })
  })

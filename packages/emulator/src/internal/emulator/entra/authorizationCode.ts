/**
 * Authorization codes: the checks of an `/authorize` request and the redirect with a code after sign-in (the
 * sign-in page itself is `signIn.ts`), the codes the control API mints, and the `authorization_code` grant that
 * redeems one once (PKCE and redirect URI checked).
 *
 * @internal
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import { randomUuid } from "../../ids.js"
import { field, present, readForm } from "../http.js"
import type { EntraError } from "../responses.js"
import { entraError } from "../responses.js"
import type { ResolvedApp, ResolvedUser, State } from "../state.js"
import { findUser } from "../state.js"
import { clientInfo } from "../tokens.js"
import { authenticateClient } from "./clientAuth.js"
import type { TokenRequest } from "./common.js"
import { clientFields, findAppOrFail, invalidGrant, missing, required, resolveTenant, scopesOf } from "./common.js"
import { userTokens } from "./userTokens.js"

const CodeForm = Schema.Struct({ ...clientFields, code: field, redirect_uri: field, code_verifier: field })

/** `grant_type=authorization_code`. @internal */
export const authorizationCode = (
  state: State,
  request: TokenRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, EntraError, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const form = yield* readForm(CodeForm)
    const app = request.app
    const codeValue = yield* required(form.code, "code")
    const scopes = yield* scopesOf(form.scope)
    const code = state.codes.get(codeValue)
    if (code === undefined) {
      return yield* Effect.fail(
        invalidGrant(
          9002313,
          "Invalid request. Request is malformed or invalid: the code is not one this emulator issued."
        )
      )
    }
    if (code.clientId !== app.clientId) {
      return yield* Effect.fail(
        invalidGrant(
          70000,
          "The provided value for the 'code' parameter is not valid: it was issued to another client."
        )
      )
    }
    yield* authenticateClient(state, request, form, { confidentialOnly: false })
    if (code.redeemed) {
      return yield* Effect.fail(
        invalidGrant(
          54005,
          "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing " +
            "refresh token."
        )
      )
    }
    const now = yield* Clock.currentTimeMillis
    if (now > code.expiresAtMillis) {
      return yield* Effect.fail(
        invalidGrant(70008, "The provided authorization code or refresh token has expired due to inactivity.")
      )
    }
    if (code.redirectUri !== undefined && present(form.redirect_uri) !== code.redirectUri) {
      return yield* Effect.fail(
        invalidGrant(
          50011,
          "The redirect URI specified in the request does not match the redirect URI the code was issued for."
        )
      )
    }
    if (code.codeChallenge !== undefined) {
      const verifier = present(form.code_verifier) ?? ""
      const computed = code.codeChallengeMethod === "plain"
        ? verifier
        : createHash("sha256").update(verifier).digest("base64url")
      if (computed !== code.codeChallenge) {
        return yield* Effect.fail(
          invalidGrant(
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request."
          )
        )
      }
    }
    code.redeemed = true
    const user = findUser(state, code.username)
    if (user === undefined) return yield* Effect.fail(invalidGrant(50034, "The user account does not exist."))
    return yield* userTokens(state, request, form, {
      app,
      user,
      tenantId: code.tenantId,
      scopes,
      alwaysRefreshToken: false
    })
  })

/** Mints a single-use authorization code. @internal */
export const mintCode = (
  state: State,
  options: {
    readonly clientId: string
    readonly username: string
    readonly tenantId: string
    readonly redirectUri: string | undefined
    readonly scopes: ReadonlyArray<string>
    readonly codeChallenge: string | undefined
    readonly codeChallengeMethod: string | undefined
  }
): Effect.Effect<string> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const code = `1.emulator-code.${(yield* randomUuid).replace(/-/g, "")}${(yield* randomUuid).replace(/-/g, "")}`
    state.codes.set(code, { ...options, expiresAtMillis: now + 10 * 60 * 1000, redeemed: false })
    return code
  })

const isLoopbackRedirect = (uri: string): boolean => {
  try {
    const u = new URL(uri)
    return u.protocol === "http:" && (u.hostname === "localhost" || u.hostname === "127.0.0.1")
  } catch {
    return false
  }
}

/** What an authorize request asks for, once checked. @internal */
export interface AuthorizeRequest {
  readonly app: ResolvedApp
  readonly tenantId: string
  readonly redirectUri: string
}

/**
 * Checks an authorize request's tenant, `client_id` and `redirect_uri` (parameters read with `q`, an empty one
 * counting as absent): the errors Entra shows instead of redirecting.
 *
 * @internal
 */
export const checkAuthorizeRequest = (
  state: State,
  tenantSegment: string | undefined,
  q: (name: string) => string | undefined
): Effect.Effect<AuthorizeRequest, EntraError> =>
  Effect.gen(function*() {
    const tenantId = yield* resolveTenant(state, tenantSegment)
    const clientId = q("client_id")
    if (clientId === undefined) return yield* Effect.fail(missing("client_id"))
    const app = yield* findAppOrFail(state, clientId, tenantId)
    const redirectUri = q("redirect_uri")
    if (redirectUri === undefined) return yield* Effect.fail(missing("redirect_uri"))
    if (!URL.canParse(redirectUri)) {
      return yield* Effect.fail(
        entraError(400, "invalid_request", 90102, "'redirect_uri' value must be a valid absolute URI.")
      )
    }
    const registered = app.redirectUris.length === 0 || app.redirectUris.includes(redirectUri) ||
      (app.publicClient && isLoopbackRedirect(redirectUri))
    if (!registered || !/^https?:\/\//.test(redirectUri)) {
      return yield* Effect.fail(
        entraError(
          400,
          "invalid_request",
          50011,
          `The redirect URI '${
            redirectUri.slice(0, 200)
          }' specified in the request does not match the redirect URIs configured for the application '${app.clientId}'.`
        )
      )
    }
    return { app, tenantId, redirectUri }
  })

/**
 * Where to send the browser back to the app after `user` signed in: `redirect_uri` with a fresh code, `state` and
 * `client_info` in the query.
 *
 * @internal
 */
export const redirectWithCode = (
  state: State,
  request: AuthorizeRequest,
  user: ResolvedUser,
  q: (name: string) => string | undefined
): Effect.Effect<string> =>
  Effect.gen(function*() {
    const code = yield* mintCode(state, {
      clientId: request.app.clientId,
      username: user.username,
      tenantId: request.tenantId,
      redirectUri: request.redirectUri,
      scopes: (q("scope") ?? "").split(/\s+/).filter((s) => s !== ""),
      codeChallenge: q("code_challenge"),
      codeChallengeMethod: q("code_challenge_method")
    })
    const target = new URL(request.redirectUri)
    target.searchParams.set("code", code)
    const stateParam = q("state")
    if (stateParam !== undefined) target.searchParams.set("state", stateParam)
    target.searchParams.set("client_info", clientInfo(user, request.tenantId))
    return target.toString()
  })

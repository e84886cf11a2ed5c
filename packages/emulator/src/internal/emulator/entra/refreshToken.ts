/**
 * The refresh-token grant: a rotated refresh token and a new access token, until the grant is revoked.
 *
 * @internal
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { field, readForm } from "../http.js"
import type { EntraError } from "../responses.js"
import type { State } from "../state.js"
import { findUser } from "../state.js"
import { authenticateClient } from "./clientAuth.js"
import type { TokenRequest } from "./common.js"
import { clientFields, invalidGrant, required, scopesOf } from "./common.js"
import { userTokens } from "./userTokens.js"

const RefreshForm = Schema.Struct({ ...clientFields, refresh_token: field })

/** `grant_type=refresh_token`. @internal */
export const refreshToken = (
  state: State,
  request: TokenRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, EntraError, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const form = yield* readForm(RefreshForm)
    const app = request.app
    const value = yield* required(form.refresh_token, "refresh_token")
    const scopes = yield* scopesOf(form.scope)
    const grant = state.refreshTokens.get(value)
    if (grant === undefined) {
      return yield* Effect.fail(
        invalidGrant(9002313, "Invalid request. Request is malformed or invalid: the refresh token is not recognised.")
      )
    }
    if (grant.clientId !== app.clientId) {
      return yield* Effect.fail(invalidGrant(70000, "The refresh token was issued to a different client."))
    }
    yield* authenticateClient(state, request, form, { confidentialOnly: false })
    if (grant.revoked) {
      return yield* Effect.fail(
        invalidGrant(50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed.")
      )
    }
    const user = findUser(state, grant.username)
    if (user === undefined) return yield* Effect.fail(invalidGrant(50034, "The user account does not exist."))
    return yield* userTokens(state, request, form, {
      app,
      user,
      tenantId: grant.tenantId,
      scopes,
      alwaysRefreshToken: true
    })
  })

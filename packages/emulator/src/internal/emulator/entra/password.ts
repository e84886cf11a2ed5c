/**
 * The username/password grant (ROPC): the user's password checked, a user token.
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

const PasswordForm = Schema.Struct({ ...clientFields, username: field, password: field })

/** `grant_type=password`. @internal */
export const password = (
  state: State,
  request: TokenRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, EntraError, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const form = yield* readForm(PasswordForm)
    const { app, tenantId } = request
    const username = yield* required(form.username, "username")
    const secret = yield* required(form.password, "password")
    const scopes = yield* scopesOf(form.scope)
    yield* authenticateClient(state, request, form, { confidentialOnly: false })
    const user = findUser(state, username)
    if (user === undefined) {
      return yield* Effect.fail(
        invalidGrant(50034, `The user account {EUII Hidden} does not exist in the ${tenantId} directory.`)
      )
    }
    if (user.password === undefined || user.password !== secret) {
      return yield* Effect.fail(
        invalidGrant(50126, "Error validating credentials due to invalid username or password.")
      )
    }
    return yield* userTokens(state, request, form, { app, user, tenantId, scopes, alwaysRefreshToken: false })
  })

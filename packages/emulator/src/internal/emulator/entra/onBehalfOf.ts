/**
 * The on-behalf-of grant (jwt-bearer): a user token addressed to the app exchanged for a token to another API.
 *
 * @internal
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { field, present, readForm } from "../http.js"
import { verify } from "../jwt.js"
import type { EntraError } from "../responses.js"
import type { State } from "../state.js"
import { findUser } from "../state.js"
import { authenticateClient } from "./clientAuth.js"
import type { TokenRequest } from "./common.js"
import { clientFields, invalidGrant, missing, required, scopesOf } from "./common.js"
import { userTokens } from "./userTokens.js"

const OnBehalfOfForm = Schema.Struct({ ...clientFields, assertion: field, requested_token_use: field })

/** `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`. @internal */
export const onBehalfOf = (
  state: State,
  request: TokenRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, EntraError, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const form = yield* readForm(OnBehalfOfForm)
    const { app, tenantId } = request
    const assertion = yield* required(form.assertion, "assertion")
    if (present(form.requested_token_use) !== "on_behalf_of") {
      return yield* Effect.fail(missing("requested_token_use"))
    }
    const scopes = yield* scopesOf(form.scope)
    yield* authenticateClient(state, request, form, { confidentialOnly: true })
    const nowMillis = yield* Clock.currentTimeMillis
    const claims = yield* verify(assertion, state.key.publicKey, {
      nowMillis,
      audience: [app.clientId, `api://${app.clientId}`],
      algorithms: ["RS256"]
    }).pipe(
      Effect.mapError((p) =>
        p._tag === "OutsideWindow"
          ? invalidGrant(500133, `Assertion is not within its valid time range: ${p.detail}.`)
          : p._tag === "WrongAudience"
          ? invalidGrant(50013, "Assertion audience does not match the Client app presenting the assertion.")
          : invalidGrant(50013, `Assertion failed signature validation. [Reason - ${p.detail.slice(0, 200)}]`)
      )
    )
    const user = typeof claims.upn === "string" ? findUser(state, claims.upn) : undefined
    if (user === undefined) {
      return yield* Effect.fail(invalidGrant(50013, "The assertion is not a user token issued by this tenant."))
    }
    return yield* userTokens(state, request, form, { app, user, tenantId, scopes, alwaysRefreshToken: false })
  })

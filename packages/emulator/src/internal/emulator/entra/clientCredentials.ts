/**
 * The client-credentials grant: an app token for one resource's `/.default` scope.
 *
 * @internal
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { json, readForm } from "../http.js"
import type { EntraError } from "../responses.js"
import { entraError } from "../responses.js"
import type { State } from "../state.js"
import { audienceOf, issueAppToken, resourceScopes } from "../tokens.js"
import { authenticateClient } from "./clientAuth.js"
import type { TokenRequest } from "./common.js"
import { ClientForm, lifetimeFields, scopesOf } from "./common.js"

/** `grant_type=client_credentials`. @internal */
export const clientCredentials = (
  state: State,
  request: TokenRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, EntraError, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const form = yield* readForm(ClientForm)
    const scopes = yield* scopesOf(form.scope)
    yield* authenticateClient(state, request, form, { confidentialOnly: true })
    const resource = resourceScopes(scopes)
    const bad = resource.find((s) => !s.endsWith("/.default"))
    if (bad !== undefined || resource.length === 0) {
      return yield* Effect.fail(
        entraError(
          400,
          "invalid_scope",
          1002012,
          `The provided value for scope ${
            (bad ?? scopes.join(" ")).slice(0, 200)
          } is not valid. Client credential flows must have a scope value with /.default suffixed to the resource ` +
            `identifier (application ID URI).`
        )
      )
    }
    if (resource.length > 1) {
      return yield* Effect.fail(
        entraError(
          400,
          "invalid_scope",
          70011,
          `The provided value for the input parameter 'scope' is not valid. The scope ${
            resource.join(" ").slice(0, 200)
          } is not valid: ask for one resource per request.`
        )
      )
    }
    const issued = yield* issueAppToken(state, {
      baseUrl: request.baseUrl,
      tenantId: request.tenantId,
      audience: audienceOf(resource[0]!),
      appId: request.app.clientId,
      objectId: request.app.objectId,
      lifetimeSeconds: state.settings.tokenLifetimeSeconds
    })
    return json(200, { ...lifetimeFields(state, issued), access_token: issued.accessToken })
  })

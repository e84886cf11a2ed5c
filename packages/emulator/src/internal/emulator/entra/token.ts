/**
 * `POST /{tenant}/oauth2/v2.0/token`: resolves the tenant and the app, then hands the request to its grant's module.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { baseUrl, entraResponse, field, readForm } from "../http.js"
import { entraError } from "../responses.js"
import type { State } from "../state.js"
import { authorizationCode } from "./authorizationCode.js"
import { clientCredentials } from "./clientCredentials.js"
import { findAppOrFail, required, resolveTenant } from "./common.js"
import { deviceCode } from "./deviceCode.js"
import { onBehalfOf } from "./onBehalfOf.js"
import { password } from "./password.js"
import { refreshToken } from "./refreshToken.js"

const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

const GrantForm = Schema.Struct({ grant_type: field, client_id: field })

/** `POST /{tenant}/oauth2/v2.0/token`. @internal */
export const token = (state: State) =>
  Effect.gen(function*() {
    const form = yield* readForm(GrantForm)
    const segment = (yield* HttpRouter.params).tenant ?? ""
    const tenantId = yield* resolveTenant(state, segment)
    const grant = yield* required(form.grant_type, "grant_type")
    const clientId = yield* required(form.client_id, "client_id")
    const app = yield* findAppOrFail(state, clientId, tenantId)
    const request = { baseUrl: yield* baseUrl(state), tenantSegment: segment, tenantId, app }
    switch (grant) {
      case "client_credentials":
        return yield* clientCredentials(state, request)
      case "authorization_code":
        return yield* authorizationCode(state, request)
      case "refresh_token":
        return yield* refreshToken(state, request)
      case deviceCodeGrant:
        return yield* deviceCode(state, request)
      case "password":
        return yield* password(state, request)
      case jwtBearerGrant:
        return yield* onBehalfOf(state, request)
      default:
        return yield* Effect.fail(
          entraError(
            400,
            "unsupported_grant_type",
            70003,
            `The app requested an unsupported grant type '${grant.slice(0, 100)}'.`
          )
        )
    }
  }).pipe(Effect.catchAll((e) => entraResponse(state, e)))

/** Entra's token and device-code endpoints take POST only; other methods get Entra's AADSTS900561. @internal */
export const postOnly = <E, R>(
  state: State,
  route: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
      request.method === "POST" ? route : entraResponse(
        state,
        entraError(
          400,
          "invalid_request",
          900561,
          `The endpoint only accepts POST, OPTIONS requests. Received a ${request.method.slice(0, 16)} request.`
        )
      )
  )

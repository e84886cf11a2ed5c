/**
 * The Azure Pipelines OIDC endpoint (`SYSTEM_OIDCREQUESTURI`): a job asks it, with the pipeline's system access
 * token, for an ID token of a service connection, and exchanges that token at Entra as a client assertion
 * (workload identity federation). Answers as Azure DevOps does: 401 with a TF400813 message for a missing or wrong
 * system access token, 404 for an unknown service connection, 400 without `api-version`, 200 `{ "oidcToken": … }`.
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { randomUuid } from "../ids.js"
import { federatedAudience, federationIssuer } from "./entra/clientAuth.js"
import { json } from "./http.js"
import { sign } from "./jwt.js"
import type { State } from "./state.js"

/** How long the ID tokens live (Azure DevOps: about 10 minutes). */
const lifetimeSeconds = 600

/** The path of the OIDC endpoint, as a pipeline job sees it in `SYSTEM_OIDCREQUESTURI`. @internal */
export const path = "/devops/emulator/project/_apis/distributedtask/hubs/build/plans/1/jobs/2/oidctoken"

/** The subject Azure DevOps puts in a service connection's ID token. @internal */
export const subjectFor = (serviceConnectionId: string): string => `sc://emulator/project/${serviceConnectionId}`

/** @internal */
export const oidcToken = (
  state: State
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "POST") {
      return json(405, { message: "The OIDC token endpoint accepts POST only." }, { allow: "POST" })
    }
    const authorization = request.headers["authorization"] ?? ""
    if (authorization !== `Bearer ${state.settings.pipelinesAccessToken}`) {
      return json(401, { message: "TF400813: The user '' is not authorized to access this resource." })
    }
    const query = new URL(request.url, state.baseUrl).searchParams
    if (query.get("api-version") === null) {
      return json(400, { message: "No api-version was supplied for the POST request." })
    }
    const connection = query.get("serviceConnectionId") ?? ""
    if (connection !== state.settings.pipelinesServiceConnectionId) {
      return json(404, { message: `Service connection '${connection}' was not found.` })
    }
    const now = Math.floor((yield* Effect.clockWith((c) => c.currentTimeMillis)) / 1000)
    const oidcToken = yield* sign(state.key, {
      iss: federationIssuer(state.baseUrl),
      sub: subjectFor(connection),
      aud: federatedAudience,
      iat: now,
      nbf: now,
      exp: now + lifetimeSeconds,
      jti: yield* randomUuid
    })
    return json(200, { oidcToken })
  })

/**
 * App Service, Azure Functions, Container Apps (and Azure Automation): `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`,
 * API 2019-08-01: `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…[&client_id|mi_res_id|object_id=…]` with
 * `X-IDENTITY-HEADER: $IDENTITY_HEADER` (and `Metadata: true`, which Azure Automation requires).
 *
 * @internal
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Source, SourceContext } from "./common.js"
import { commonHeaders, fetchToken, identityParams } from "./common.js"

/** @internal */
export const label = "App Service"

/** @internal */
export const apiVersion = "2019-08-01"

/** @internal */
export interface Environment {
  readonly endpoint: string
  readonly header: Redacted.Redacted<string>
}

/** @internal */
export const make = (ctx: SourceContext, env: Environment): Source => {
  const how = {
    credential: ctx.credential,
    label,
    secrets: [env.header],
    noResponseHint: "check that IDENTITY_ENDPOINT names the local managed identity endpoint of this App Service, " +
      "Functions or Container Apps host"
  }
  const request = (resource: string) =>
    Effect.map(commonHeaders, (headers) =>
      HttpClientRequest.get(env.endpoint).pipe(
        HttpClientRequest.appendUrlParams({
          "api-version": apiVersion,
          resource,
          ...identityParams(ctx.identity, { clientId: "client_id", objectId: "object_id", resourceId: "mi_res_id" })
        }),
        HttpClientRequest.setHeaders({
          ...headers,
          Metadata: "true",
          "X-IDENTITY-HEADER": Redacted.value(env.header)
        })
      ))
  return { label, getToken: (resource) => fetchToken(ctx.client, how, request(resource), ctx.retryPolicy) }
}

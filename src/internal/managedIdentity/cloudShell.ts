/**
 * Azure Cloud Shell: `MSI_ENDPOINT` alone. `POST $MSI_ENDPOINT` with the form `resource=…` and `Metadata: true`.
 * The token is the signed-in portal user's; user-assigned identities do not exist here.
 *
 * @internal
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import type { Source, SourceContext } from "./common.js"
import { commonHeaders, fetchToken, userAssignedUnsupported } from "./common.js"

/** @internal */
export const label = "Cloud Shell"

/** @internal */
export interface Environment {
  readonly endpoint: string
}

/** @internal */
export const make = (ctx: SourceContext, env: Environment): Source => {
  if (ctx.identity._tag !== "SystemAssigned") {
    return userAssignedUnsupported(ctx, label, "Cloud Shell gives the signed-in user's token only")
  }
  const how = {
    credential: ctx.credential,
    label,
    secrets: [],
    noResponseHint: "check that MSI_ENDPOINT names Cloud Shell's local token endpoint"
  }
  const request = (resource: string) =>
    Effect.map(commonHeaders, (headers) =>
      HttpClientRequest.post(env.endpoint).pipe(
        HttpClientRequest.setHeaders({ ...headers, Metadata: "true" }),
        HttpClientRequest.bodyUrlParams({ resource })
      ))
  return { label, getToken: (resource) => fetchToken(ctx.client, how, request(resource), ctx.retryPolicy) }
}

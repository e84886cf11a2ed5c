/**
 * `MSI_ENDPOINT` + `MSI_SECRET`, API 2017-09-01: the legacy App Service API and Azure Machine Learning.
 *
 * - App Service: `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=…[&clientid=…]` with `secret: $MSI_SECRET`;
 *   `expires_on` is a date string (`11/27/2026 08:00:00 +00:00`, `11/27/2026 8:00:00 AM +00:00`).
 * - Azure ML (recognised by `DEFAULT_IDENTITY_CLIENT_ID`): always sends `clientid` (the user-assigned client id, else
 *   `DEFAULT_IDENTITY_CLIENT_ID`) and `Metadata: true`; `expires_on` is epoch seconds.
 *
 * Only client ids select a user-assigned identity on this API.
 *
 * @internal
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { Source, SourceContext } from "./common.js"
import { commonHeaders, fetchToken, userAssignedUnsupported } from "./common.js"

/** @internal */
export const apiVersion = "2017-09-01"

/** @internal */
export interface Environment {
  readonly endpoint: string
  readonly secret: Redacted.Redacted<string>
  /** `DEFAULT_IDENTITY_CLIENT_ID`: set on Azure Machine Learning compute. */
  readonly defaultClientId: Option.Option<string>
}

/** @internal */
export const make = (ctx: SourceContext, env: Environment): Source => {
  const azureMl = Option.isSome(env.defaultClientId)
  const label = azureMl ? "Azure Machine Learning" : "App Service (2017-09-01 API)"
  if (ctx.identity._tag === "ObjectId" || ctx.identity._tag === "ResourceId") {
    return userAssignedUnsupported(ctx, label, "the 2017-09-01 API selects user-assigned identities by client id only")
  }
  const clientId = ctx.identity._tag === "ClientId" ? Option.some(ctx.identity.value) : env.defaultClientId
  const how = {
    credential: ctx.credential,
    label,
    secrets: [env.secret],
    noResponseHint: "check that MSI_ENDPOINT names the local managed identity endpoint of this host"
  }
  const request = (resource: string) =>
    Effect.map(commonHeaders, (headers) =>
      HttpClientRequest.get(env.endpoint).pipe(
        HttpClientRequest.appendUrlParams({
          "api-version": apiVersion,
          resource,
          ...(Option.isSome(clientId) ? { clientid: clientId.value } : {})
        }),
        HttpClientRequest.setHeaders({
          ...headers,
          ...(azureMl ? { Metadata: "true" } : {}),
          secret: Redacted.value(env.secret)
        })
      ))
  return { label, getToken: (resource) => fetchToken(ctx.client, how, request(resource), ctx.retryPolicy) }
}

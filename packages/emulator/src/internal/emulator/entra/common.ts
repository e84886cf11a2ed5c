/**
 * What the Entra routes share: the tenant and app lookups, the client's fields of a token request, missing
 * parameters, and the lifetime fields of a token answer.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { field, present } from "../http.js"
import type { EntraError } from "../responses.js"
import { entraError } from "../responses.js"
import type { ResolvedApp, State } from "../state.js"
import { findApp, tenantFor } from "../state.js"
import type { Issued } from "../tokens.js"

/** The fields every token request may carry: the grant, the client and its proof, the scopes. @internal */
export const clientFields = {
  grant_type: field,
  client_id: field,
  client_secret: field,
  client_assertion: field,
  client_assertion_type: field,
  scope: field,
  client_info: field
}

/** @internal */
export const ClientForm = Schema.Struct(clientFields)

/** @internal */
export type ClientForm = typeof ClientForm.Type

/** What the token endpoint resolved before a grant runs: the tenant as addressed and as known, the app. @internal */
export interface TokenRequest {
  readonly baseUrl: string
  readonly tenantSegment: string
  readonly tenantId: string
  readonly app: ResolvedApp
}

/** @internal */
export const missing = (name: string): EntraError =>
  entraError(400, "invalid_request", 900144, `The request body must contain the following parameter: '${name}'.`)

/** A parameter's value; absent or empty is AADSTS900144. @internal */
export const required = (value: string | undefined, name: string): Effect.Effect<string, EntraError> => {
  const v = present(value)
  return v === undefined ? Effect.fail(missing(name)) : Effect.succeed(v)
}

/** The scopes of a request (`scope` is required). @internal */
export const scopesOf = (scope: string | undefined): Effect.Effect<ReadonlyArray<string>, EntraError> =>
  Effect.map(required(scope, "scope"), (s) => s.split(/\s+/).filter((x) => x !== ""))

/** @internal */
export const invalidGrant = (code: number, description: string): EntraError =>
  entraError(400, "invalid_grant", code, description)

/** Entra answers for tenants it knows; others are AADSTS90002. @internal */
export const resolveTenant = (state: State, segment: string | undefined): Effect.Effect<string, EntraError> => {
  const tenant = segment === undefined ? undefined : tenantFor(state, segment)
  return tenant === undefined
    ? Effect.fail(
      entraError(
        400,
        "invalid_request",
        90002,
        `Tenant '${
          (segment ?? "").slice(0, 64)
        }' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`
      )
    )
    : Effect.succeed(tenant)
}

/** The registered app of a client id; others are AADSTS700016. @internal */
export const findAppOrFail = (
  state: State,
  clientId: string,
  tenantId: string
): Effect.Effect<ResolvedApp, EntraError> => {
  const app = findApp(state, clientId)
  return app === undefined
    ? Effect.fail(
      entraError(
        400,
        "unauthorized_client",
        700016,
        `Application with identifier '${
          clientId.slice(0, 64)
        }' was not found in the directory '${tenantId}'. This can happen if the application has not been installed ` +
          `by the administrator of the tenant or consented to by any user in the tenant. You may have sent your ` +
          `authentication request to the wrong tenant.`
      )
    )
    : Effect.succeed(app)
}

/** `token_type`, `expires_in`, `ext_expires_in` and `refresh_in` (when configured). @internal */
export const lifetimeFields = (state: State, issued: Issued) => ({
  token_type: "Bearer",
  expires_in: issued.lifetimeSeconds,
  ext_expires_in: issued.lifetimeSeconds,
  ...(state.settings.refreshInSeconds !== undefined ? { refresh_in: state.settings.refreshInSeconds } : {})
})

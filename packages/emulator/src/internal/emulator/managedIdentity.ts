/**
 * The managed-identity hosts: IMDS, App Service (2019 and 2017 APIs), Cloud Shell and the Azure Arc challenge,
 * answering with the bodies, headers and status codes those hosts use.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { randomUuid } from "../ids.js"
import { baseUrl, field, json, present, readForm, readQuery } from "./http.js"
import { appService2017Date } from "./responses.js"
import type { ResolvedIdentity, State } from "./state.js"
import { findUser } from "./state.js"
import { issueManagedIdentityToken, issueUserToken } from "./tokens.js"

type Response = HttpServerResponse.HttpServerResponse

const imdsError = (description: string, status = 400): Response =>
  json(status, { error: "invalid_request", error_description: description })

const hasMetadataHeader = (request: HttpServerRequest.HttpServerRequest) =>
  request.headers["metadata"]?.toLowerCase() === "true"

/** The query of a managed-identity request: API version, resource, and the identity it names. @internal */
export const IdentityQuery = Schema.Struct({
  "api-version": field,
  resource: field,
  client_id: field,
  clientid: field,
  object_id: field,
  principal_id: field,
  msi_res_id: field,
  mi_res_id: field
})

/** @internal */
export type IdentityQuery = typeof IdentityQuery.Type

/**
 * Picks the identity a request names (`client_id`, `object_id`/`principal_id`, `msi_res_id`/`mi_res_id`), or the
 * system-assigned one when it names none.
 *
 * @internal
 */
export const selectIdentity = (
  state: State,
  query: IdentityQuery
): ResolvedIdentity | undefined => {
  const get = (...names: Array<keyof IdentityQuery>) => {
    for (const n of names) {
      const v = present(query[n])
      if (v !== undefined) return v
    }
    return undefined
  }
  const clientId = get("client_id", "clientid")
  const objectId = get("object_id", "principal_id")
  const resourceId = get("msi_res_id", "mi_res_id")
  const ids = state.settings.identities
  if (clientId !== undefined) return ids.find((i) => i.clientId.toLowerCase() === clientId.toLowerCase())
  if (objectId !== undefined) return ids.find((i) => i.objectId.toLowerCase() === objectId.toLowerCase())
  if (resourceId !== undefined) return ids.find((i) => i.resourceId.toLowerCase() === resourceId.toLowerCase())
  return ids.find((i) => i.systemAssigned)
}

const imdsBody = (state: State, identity: ResolvedIdentity, resource: string) =>
  Effect.map(
    Effect.flatMap(baseUrl(state), (url) => issueManagedIdentityToken(state, { baseUrl: url, identity, resource })),
    (issued) =>
      json(200, {
        access_token: issued.accessToken,
        client_id: identity.clientId,
        expires_in: String(issued.lifetimeSeconds),
        expires_on: String(issued.expiresOnSeconds),
        ext_expires_in: String(issued.lifetimeSeconds),
        not_before: String(issued.issuedAtSeconds),
        resource,
        token_type: "Bearer",
        refresh_token: ""
      })
  )

/** `GET /metadata/identity/oauth2/token` (IMDS; also Arc after its challenge). @internal */
export const imds = (state: State) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!hasMetadataHeader(request)) return imdsError("Required metadata header not specified")
    if (request.method !== "GET") return imdsError("Only GET is supported", 405)
    const query = yield* readQuery(IdentityQuery)
    if (query["api-version"] === undefined) return imdsError("Required parameter 'api-version' not specified")
    const resource = present(query.resource)
    if (resource === undefined) return imdsError("Required audience parameter not specified")
    const identity = selectIdentity(state, query)
    if (identity === undefined) return imdsError("Identity not found")
    return yield* imdsBody(state, identity, resource)
  })

const appServiceError = (status: number, message: string): Response => json(status, { statusCode: status, message })

/**
 * The App Service token routes: the secret header checked, then a token for the resource and identity asked for,
 * shaped by `body`.
 */
const appServiceToken = (
  state: State,
  header: { readonly name: string; readonly label: string; readonly expected: string },
  body: (issued: { accessToken: string; expiresOnSeconds: number }, identity: { clientId: string }) => object
) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.headers[header.name] !== header.expected) {
      return appServiceError(401, `Unauthorized: the ${header.label} header is missing or wrong.`)
    }
    const query = yield* readQuery(IdentityQuery)
    const resource = present(query.resource)
    if (resource === undefined) return appServiceError(400, "The 'resource' query parameter is required.")
    const identity = selectIdentity(state, query)
    if (identity === undefined) {
      return appServiceError(400, "No managed identity matches the identifier in the request.")
    }
    const issued = yield* issueManagedIdentityToken(state, { baseUrl: yield* baseUrl(state), identity, resource })
    return json(200, { ...body(issued, identity), resource, token_type: "Bearer" })
  })

/** `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…` with `X-IDENTITY-HEADER`. @internal */
export const appService2019 = (state: State) =>
  appServiceToken(
    state,
    { name: "x-identity-header", label: "X-IDENTITY-HEADER", expected: state.settings.identityHeader },
    (issued, identity) => ({
      access_token: issued.accessToken,
      expires_on: String(issued.expiresOnSeconds),
      client_id: identity.clientId
    })
  )

/** `GET {MSI_ENDPOINT}?api-version=2017-09-01&resource=…` with `secret`; `expires_on` is a date string. @internal */
export const appService2017 = (state: State) =>
  appServiceToken(
    state,
    { name: "secret", label: "secret", expected: state.settings.msiSecret },
    (issued) => ({
      access_token: issued.accessToken,
      expires_on: appService2017Date(issued.expiresOnSeconds * 1000)
    })
  )

const CloudShellForm = Schema.Struct({ resource: field })

/** `POST {MSI_ENDPOINT}` with `Metadata: true` and form `resource=…`: a token for the signed-in portal user. @internal */
export const cloudShell = (state: State) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!hasMetadataHeader(request)) return imdsError("Required metadata header not specified")
    const form = yield* Effect.either(readForm(CloudShellForm))
    if (form._tag === "Left") return imdsError(form.left.description, form.left.status)
    const resource = present(form.right.resource)
    if (resource === undefined) return imdsError("Required audience parameter not specified")
    const user = findUser(state, undefined)
    if (user === undefined) return imdsError("No user is signed in to Cloud Shell")
    return yield* Effect.map(
      issueUserToken(state, {
        baseUrl: yield* baseUrl(state),
        tenantId: state.settings.tenantId,
        app: { clientId: "00000000-0000-0000-0000-cloudshell00" },
        user,
        scopes: [`${resource}/.default`],
        audience: resource,
        lifetimeSeconds: state.settings.tokenLifetimeSeconds
      }),
      (issued) =>
        json(200, {
          access_token: issued.accessToken,
          refresh_token: "",
          expires_in: String(issued.lifetimeSeconds),
          expires_on: String(issued.expiresOnSeconds),
          not_before: String(issued.issuedAtSeconds),
          resource,
          token_type: "Bearer"
        })
    )
  })

/**
 * Azure Arc: without `Authorization`, a 401 whose `WWW-Authenticate: Basic realm=<path>` names a fresh key file in
 * the emulator's key directory; with `Authorization: Basic <that file's contents>`, a token like IMDS's.
 *
 * @internal
 */
export const arc = (state: State) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!hasMetadataHeader(request)) return imdsError("Required metadata header not specified")
    const query = yield* readQuery(IdentityQuery)
    if (query["api-version"] === undefined) return imdsError("Required parameter 'api-version' not specified")
    const authorization = request.headers["authorization"]
    if (authorization === undefined || !/^basic /i.test(authorization)) {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const secret = (yield* randomUuid).replace(/-/g, "")
      const file = path.join(state.settings.arcKeyDirectory, `${(yield* randomUuid)}.key`)
      const written = yield* fs.writeFileString(file, secret, { mode: 0o600 }).pipe(
        Effect.as(true),
        Effect.orElseSucceed(() => false)
      )
      if (!written) return json(500, { error: "server_error", error_description: "Could not write the key file" })
      state.arcKeys.add(secret)
      return json(401, { error: "unauthorized", error_description: "Authorization header is required" }, {
        "www-authenticate": `Basic realm=${file}`
      })
    }
    const presented = authorization.slice("basic ".length).trim()
    if (!state.arcKeys.has(presented)) {
      return json(401, {
        error: "unauthorized",
        error_description: "The key in the Authorization header is wrong"
      })
    }
    const resource = present(query.resource)
    if (resource === undefined) return imdsError("Required audience parameter not specified")
    const identity = state.settings.identities.find((i) => i.systemAssigned)
    if (identity === undefined) return imdsError("Identity not found")
    if (selectIdentity(state, query) !== identity) {
      return imdsError("Azure Arc supports only the system-assigned identity")
    }
    return yield* imdsBody(state, identity, resource)
  })

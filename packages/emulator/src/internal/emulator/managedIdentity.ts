/**
 * The managed-identity hosts: IMDS, App Service (2019 and 2017 APIs), Cloud Shell and the Azure Arc challenge,
 * answering with the bodies, headers and status codes those hosts use.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { randomUuid } from "../ids.js"
import type { Incoming, Reply } from "./reply.js"
import { jsonReply } from "./reply.js"
import { appService2017Date } from "./responses.js"
import type { ResolvedIdentity, State } from "./state.js"
import { findUser } from "./state.js"
import { issueManagedIdentityToken, issueUserToken } from "./tokens.js"

const imdsError = (description: string, status = 400): Reply =>
  jsonReply(status, { error: "invalid_request", error_description: description })

const hasMetadataHeader = (incoming: Incoming) => incoming.headers["metadata"]?.toLowerCase() === "true"

/**
 * Picks the identity a request names (`client_id`, `object_id`/`principal_id`, `msi_res_id`/`mi_res_id`), or the
 * system-assigned one when it names none.
 *
 * @internal
 */
export const selectIdentity = (
  state: State,
  params: URLSearchParams
): ResolvedIdentity | undefined => {
  const get = (...names: Array<string>) => {
    for (const n of names) {
      const v = params.get(n)
      if (v !== null && v !== "") return v
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

const imdsBody = (state: State, incoming: Incoming, identity: ResolvedIdentity, resource: string) =>
  Effect.map(
    issueManagedIdentityToken(state, { baseUrl: incoming.baseUrl, identity, resource }),
    (issued) =>
      jsonReply(200, {
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
export const imds = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  Effect.suspend(() => {
    if (!hasMetadataHeader(incoming)) return Effect.succeed(imdsError("Required metadata header not specified"))
    if (incoming.method !== "GET") return Effect.succeed(imdsError("Only GET is supported", 405))
    if (incoming.query.get("api-version") === null) {
      return Effect.succeed(imdsError("Required parameter 'api-version' not specified"))
    }
    const resource = incoming.query.get("resource")
    if (resource === null || resource === "") {
      return Effect.succeed(imdsError("Required audience parameter not specified"))
    }
    const identity = selectIdentity(state, incoming.query)
    if (identity === undefined) return Effect.succeed(imdsError("Identity not found"))
    return imdsBody(state, incoming, identity, resource)
  })

const appServiceError = (status: number, message: string): Reply => jsonReply(status, { statusCode: status, message })

/**
 * The App Service token routes: the secret header checked, then a token for the resource and identity asked for,
 * shaped by `body`.
 */
const appServiceToken = (
  state: State,
  incoming: Incoming,
  header: { readonly name: string; readonly label: string; readonly expected: string },
  body: (issued: { accessToken: string; expiresOnSeconds: number }, identity: { clientId: string }) => object
): Effect.Effect<Reply> =>
  Effect.suspend(() => {
    if (incoming.headers[header.name] !== header.expected) {
      return Effect.succeed(
        appServiceError(401, `Unauthorized: the ${header.label} header is missing or wrong.`)
      )
    }
    const resource = incoming.query.get("resource")
    if (resource === null || resource === "") {
      return Effect.succeed(appServiceError(400, "The 'resource' query parameter is required."))
    }
    const identity = selectIdentity(state, incoming.query)
    if (identity === undefined) {
      return Effect.succeed(appServiceError(400, "No managed identity matches the identifier in the request."))
    }
    return Effect.map(
      issueManagedIdentityToken(state, { baseUrl: incoming.baseUrl, identity, resource }),
      (issued) => jsonReply(200, { ...body(issued, identity), resource, token_type: "Bearer" })
    )
  })

/** `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…` with `X-IDENTITY-HEADER`. @internal */
export const appService2019 = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  appServiceToken(
    state,
    incoming,
    { name: "x-identity-header", label: "X-IDENTITY-HEADER", expected: state.settings.identityHeader },
    (issued, identity) => ({
      access_token: issued.accessToken,
      expires_on: String(issued.expiresOnSeconds),
      client_id: identity.clientId
    })
  )

/** `GET {MSI_ENDPOINT}?api-version=2017-09-01&resource=…` with `secret`; `expires_on` is a date string. @internal */
export const appService2017 = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  appServiceToken(
    state,
    incoming,
    { name: "secret", label: "secret", expected: state.settings.msiSecret },
    (issued) => ({
      access_token: issued.accessToken,
      expires_on: appService2017Date(issued.expiresOnSeconds * 1000)
    })
  )

/** `POST {MSI_ENDPOINT}` with `Metadata: true` and form `resource=…`: a token for the signed-in portal user. @internal */
export const cloudShell = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  Effect.suspend(() => {
    if (!hasMetadataHeader(incoming)) return Effect.succeed(imdsError("Required metadata header not specified"))
    const resource = incoming.form.get("resource")
    if (resource === null || resource === "") {
      return Effect.succeed(imdsError("Required audience parameter not specified"))
    }
    const user = findUser(state, undefined)
    if (user === undefined) return Effect.succeed(imdsError("No user is signed in to Cloud Shell"))
    return Effect.map(
      issueUserToken(state, {
        baseUrl: incoming.baseUrl,
        tenantId: state.settings.tenantId,
        app: { clientId: "00000000-0000-0000-0000-cloudshell00" },
        user,
        scopes: [`${resource}/.default`],
        audience: resource,
        lifetimeSeconds: state.settings.tokenLifetimeSeconds
      }),
      (issued) =>
        jsonReply(200, {
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
export const arc = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    if (!hasMetadataHeader(incoming)) return imdsError("Required metadata header not specified")
    if (incoming.query.get("api-version") === null) return imdsError("Required parameter 'api-version' not specified")
    const authorization = incoming.headers["authorization"]
    if (authorization === undefined || !/^basic /i.test(authorization)) {
      const secret = (yield* randomUuid).replace(/-/g, "")
      const file = path.join(state.settings.arcKeyDirectory, `${(yield* randomUuid)}.key`)
      const written = yield* Effect.promise(() =>
        fs.writeFile(file, secret, { mode: 0o600 }).then(() => true, () => false)
      )
      if (!written) return jsonReply(500, { error: "server_error", error_description: "Could not write the key file" })
      state.arcKeys.add(secret)
      return jsonReply(401, { error: "unauthorized", error_description: "Authorization header is required" }, {
        "www-authenticate": `Basic realm=${file}`
      })
    }
    const presented = authorization.slice("basic ".length).trim()
    if (!state.arcKeys.has(presented)) {
      return jsonReply(401, {
        error: "unauthorized",
        error_description: "The key in the Authorization header is wrong"
      })
    }
    const resource = incoming.query.get("resource")
    if (resource === null || resource === "") return imdsError("Required audience parameter not specified")
    const identity = state.settings.identities.find((i) => i.systemAssigned)
    if (identity === undefined) return imdsError("Identity not found")
    if (selectIdentity(state, incoming.query) !== identity) {
      return imdsError("Azure Arc supports only the system-assigned identity")
    }
    return yield* imdsBody(state, incoming, identity, resource)
  })

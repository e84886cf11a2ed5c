/**
 * The Entra ID routes: the v2 token endpoint (client credentials with a secret or a JWT assertion, authorization
 * code, refresh token, device code, username/password, on-behalf-of), the device-code and authorize endpoints, the
 * OpenID configuration and the signing keys. Every refusal is an Entra-shaped error with its AADSTS code; no input
 * makes a route fail or die.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import { createHash } from "node:crypto"
import { randomUuid } from "../ids.js"
import type { JwtProblem } from "./jwt.js"
import { decodeHeader, peekClaims, verify } from "./jwt.js"
import type { Incoming, Reply } from "./reply.js"
import { entraReply, jsonReply, redirectReply, textReply } from "./reply.js"
import type { EntraError } from "./responses.js"
import { entraError } from "./responses.js"
import type { ResolvedApp, ResolvedUser, State } from "./state.js"
import { findApp, findUser, tenantFor } from "./state.js"
import type { Issued } from "./tokens.js"
import {
  audienceOf,
  clientInfo,
  issueAppToken,
  issueIdToken,
  issuer,
  issueUserToken,
  oidcScopes,
  resourceScopes
} from "./tokens.js"

/** The audience of federated assertions (workload identity). @internal */
export const federatedAudience = "api://AzureADTokenExchange"

/** The issuer of the federated assertions the emulator mints. @internal */
export const federationIssuer = (baseUrl: string): string => `${baseUrl}/federation`

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

const field = (incoming: Incoming, name: string): string | undefined => {
  const value = incoming.form.get(name)
  return value === null || value === "" ? undefined : value
}

const missing = (name: string) =>
  entraError(400, "invalid_request", 900144, `The request body must contain the following parameter: '${name}'.`)

const required = (incoming: Incoming, name: string): Effect.Effect<string, EntraError> => {
  const value = field(incoming, name)
  return value === undefined ? Effect.fail(missing(name)) : Effect.succeed(value)
}

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

const findAppOrFail = (state: State, clientId: string, tenantId: string): Effect.Effect<ResolvedApp, EntraError> => {
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

const scopesOf = (incoming: Incoming): Effect.Effect<ReadonlyArray<string>, EntraError> =>
  Effect.map(required(incoming, "scope"), (s) => s.split(/\s+/).filter((x) => x !== ""))

const invalidAssertion = (code: number, description: string) => entraError(401, "invalid_client", code, description)

const describeProblem = (problem: JwtProblem, nowMillis: number, token: string): EntraError => {
  switch (problem._tag) {
    case "OutsideWindow": {
      const claims = peekClaims(token)
      const at = (s: unknown) =>
        typeof s === "number"
          ? Option.match(DateTime.make(s * 1000), { onNone: () => String(s), onSome: DateTime.formatIso })
          : "(none)"
      return invalidAssertion(
        700024,
        `Client assertion is not within its valid time range. Current time: ${
          DateTime.formatIso(DateTime.unsafeMake(nowMillis))
        }, assertion valid from ${at(claims?.nbf)}, expiry time of assertion ${at(claims?.exp)}. Review the ` +
          `documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .`
      )
    }
    case "BadSignature":
      return invalidAssertion(700027, `Client assertion failed signature validation. [Reason - ${problem.detail}.]`)
    case "WrongAudience":
      return invalidAssertion(
        50027,
        `JWT token is invalid or malformed: ${problem.detail}; a client assertion's aud must be the token endpoint URL.`
      )
    case "Malformed":
      return invalidAssertion(50027, `JWT token is invalid or malformed. [Reason - ${problem.detail.slice(0, 200)}]`)
  }
}

/** Verifies a client assertion: a certificate-signed JWT, or a federated token the emulator minted. */
const verifyAssertion = (
  state: State,
  incoming: Incoming,
  app: ResolvedApp,
  tenantSegment: string,
  tenantId: string,
  assertion: string
): Effect.Effect<void, EntraError> =>
  Effect.gen(function*() {
    const nowMillis = yield* Clock.currentTimeMillis
    const header = decodeHeader(assertion)
    if (Either.isLeft(header)) return yield* Effect.fail(describeProblem(header.left, nowMillis, assertion))
    const x5t = typeof header.right.x5t === "string" ? header.right.x5t : undefined
    const x5tS256 = typeof header.right["x5t#S256"] === "string" ? header.right["x5t#S256"] as string : undefined
    if (x5t !== undefined || x5tS256 !== undefined) {
      const certificate = app.certificates.find((c) =>
        (x5tS256 !== undefined && c.x5tS256 === x5tS256) || (x5tS256 === undefined && c.x5t === x5t)
      )
      if (certificate === undefined) {
        return yield* Effect.fail(
          invalidAssertion(
            700027,
            `The certificate with identifier used to sign the client assertion is not registered on application. ` +
              `[Reason - The key was not found., Thumbprint of key used by client: '${
                Buffer.from(x5tS256 ?? x5t ?? "", "base64url").toString("hex").toUpperCase().slice(0, 64)
              }', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for ` +
              `app Id '${app.clientId}'.]`
          )
        )
      }
      const audiences = [...new Set([tenantSegment, tenantId])].map((t) => `${incoming.baseUrl}/${t}/oauth2/v2.0/token`)
      const claims = yield* verify(assertion, certificate.publicKey, {
        nowMillis,
        audience: audiences,
        algorithms: ["PS256", "RS256"]
      }).pipe(Effect.mapError((p) => describeProblem(p, nowMillis, assertion)))
      if (claims.iss !== app.clientId || claims.sub !== app.clientId) {
        return yield* Effect.fail(
          invalidAssertion(50027, "JWT token is invalid or malformed: iss and sub must both be the client id.")
        )
      }
      return
    }
    if (header.right.kid !== state.key.kid) {
      return yield* Effect.fail(
        invalidAssertion(
          700027,
          "Client assertion contains an invalid signature. [Reason - The key was not found: the assertion has no " +
            "x5t or x5t#S256 header of a registered certificate, and is not signed by this emulator.]"
        )
      )
    }
    const claims = yield* verify(assertion, state.key.publicKey, {
      nowMillis,
      audience: federatedAudience,
      algorithms: ["RS256"]
    }).pipe(
      Effect.mapError((p) =>
        p._tag === "WrongAudience"
          ? invalidAssertion(
            700212,
            `No matching federated identity record found for presented assertion audience. The audience must be ` +
              `'${federatedAudience}'.`
          )
          : describeProblem(p, nowMillis, assertion)
      )
    )
    if (claims.iss !== federationIssuer(state.baseUrl)) {
      return yield* Effect.fail(
        invalidAssertion(700211, "No matching federated identity record found for presented assertion issuer.")
      )
    }
    if (app.federatedSubjects !== undefined && !app.federatedSubjects.includes(String(claims.sub))) {
      return yield* Effect.fail(
        invalidAssertion(
          700213,
          `No matching federated identity record found for presented assertion subject '${
            String(claims.sub).slice(0, 128)
          }'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.`
        )
      )
    }
  })

/** Checks the client's secret or assertion; public clients may send neither. */
const authenticateClient = (
  state: State,
  incoming: Incoming,
  app: ResolvedApp,
  tenantSegment: string,
  tenantId: string,
  options: { readonly confidentialOnly: boolean }
): Effect.Effect<void, EntraError> => {
  const secret = field(incoming, "client_secret")
  const assertion = field(incoming, "client_assertion")
  if (secret !== undefined) {
    return app.secrets.includes(secret) ? Effect.void : Effect.fail(
      entraError(
        401,
        "invalid_client",
        7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not ` +
          `the client secret ID, for a secret added to app '${app.clientId}'.`
      )
    )
  }
  if (assertion !== undefined) {
    if (field(incoming, "client_assertion_type") !== assertionType) {
      return Effect.fail(
        entraError(
          400,
          "invalid_request",
          900144,
          `The request body must contain the following parameter: 'client_assertion_type' (${assertionType}).`
        )
      )
    }
    return verifyAssertion(state, incoming, app, tenantSegment, tenantId, assertion)
  }
  if (!options.confidentialOnly && app.publicClient) return Effect.void
  return Effect.fail(
    entraError(
      401,
      "invalid_client",
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
    )
  )
}

const lifetimeFields = (state: State, issued: Issued) => ({
  token_type: "Bearer",
  expires_in: issued.lifetimeSeconds,
  ext_expires_in: issued.lifetimeSeconds,
  ...(state.settings.refreshInSeconds !== undefined ? { refresh_in: state.settings.refreshInSeconds } : {})
})

/** Mints a refresh token for a user of an app, as a sign-in with `offline_access` would. @internal */
export const mintRefreshToken = (
  state: State,
  grant: { readonly clientId: string; readonly username: string; readonly tenantId: string }
): Effect.Effect<string> =>
  Effect.map(Effect.zip(randomUuid, randomUuid), ([a, b]) => {
    const token = `1.emulator-rt.${a}${b}`.replace(/-/g, "")
    state.refreshTokens.set(token, { ...grant, revoked: false })
    return token
  })

/** Answers a user flow: access token, and refresh token, ID token and client info as Entra would. */
const userTokens = (
  state: State,
  incoming: Incoming,
  options: {
    readonly app: ResolvedApp
    readonly user: ResolvedUser
    readonly tenantId: string
    readonly scopes: ReadonlyArray<string>
    readonly alwaysRefreshToken: boolean
  }
): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    const lifetimeSeconds = state.settings.tokenLifetimeSeconds
    const issued = yield* issueUserToken(state, {
      baseUrl: incoming.baseUrl,
      tenantId: options.tenantId,
      app: options.app,
      user: options.user,
      scopes: options.scopes,
      lifetimeSeconds
    })
    const lower = options.scopes.map((s) => s.toLowerCase())
    const refreshToken = options.alwaysRefreshToken || lower.includes("offline_access")
      ? yield* mintRefreshToken(state, {
        clientId: options.app.clientId,
        username: options.user.username,
        tenantId: options.tenantId
      })
      : undefined
    const idToken = lower.includes("openid")
      ? yield* issueIdToken(state, {
        baseUrl: incoming.baseUrl,
        tenantId: options.tenantId,
        clientId: options.app.clientId,
        user: options.user,
        lifetimeSeconds
      })
      : undefined
    const resource = resourceScopes(options.scopes)
    const granted = [...(resource.length === 0 ? ["User.Read"] : resource), ...lower.filter((s) => oidcScopes.has(s))]
    return jsonReply(200, {
      ...lifetimeFields(state, issued),
      scope: granted.join(" "),
      access_token: issued.accessToken,
      ...(refreshToken !== undefined ? { refresh_token: refreshToken } : {}),
      ...(idToken !== undefined ? { id_token: idToken } : {}),
      ...(field(incoming, "client_info") === "1" ? { client_info: clientInfo(options.user, options.tenantId) } : {})
    })
  })

const clientCredentials = (
  state: State,
  incoming: Incoming,
  app: ResolvedApp,
  tenantSegment: string,
  tenantId: string
) =>
  Effect.gen(function*() {
    const scopes = yield* scopesOf(incoming)
    yield* authenticateClient(state, incoming, app, tenantSegment, tenantId, { confidentialOnly: true })
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
      baseUrl: incoming.baseUrl,
      tenantId,
      audience: audienceOf(resource[0]!),
      appId: app.clientId,
      objectId: app.objectId,
      lifetimeSeconds: state.settings.tokenLifetimeSeconds
    })
    return jsonReply(200, { ...lifetimeFields(state, issued), access_token: issued.accessToken })
  })

const invalidGrant = (code: number, description: string) => entraError(400, "invalid_grant", code, description)

const authorizationCode = (
  state: State,
  incoming: Incoming,
  app: ResolvedApp,
  tenantSegment: string,
  tenantId: string
) =>
  Effect.gen(function*() {
    const codeValue = yield* required(incoming, "code")
    const scopes = yield* scopesOf(incoming)
    const code = state.codes.get(codeValue)
    if (code === undefined) {
      return yield* Effect.fail(
        invalidGrant(
          9002313,
          "Invalid request. Request is malformed or invalid: the code is not one this emulator issued."
        )
      )
    }
    if (code.clientId !== app.clientId) {
      return yield* Effect.fail(
        invalidGrant(
          70000,
          "The provided value for the 'code' parameter is not valid: it was issued to another client."
        )
      )
    }
    yield* authenticateClient(state, incoming, app, tenantSegment, tenantId, { confidentialOnly: false })
    if (code.redeemed) {
      return yield* Effect.fail(
        invalidGrant(
          54005,
          "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing " +
            "refresh token."
        )
      )
    }
    const now = yield* Clock.currentTimeMillis
    if (now > code.expiresAtMillis) {
      return yield* Effect.fail(
        invalidGrant(70008, "The provided authorization code or refresh token has expired due to inactivity.")
      )
    }
    if (code.redirectUri !== undefined && field(incoming, "redirect_uri") !== code.redirectUri) {
      return yield* Effect.fail(
        invalidGrant(
          50011,
          "The redirect URI specified in the request does not match the redirect URI the code was issued for."
        )
      )
    }
    if (code.codeChallenge !== undefined) {
      const verifier = field(incoming, "code_verifier") ?? ""
      const computed = code.codeChallengeMethod === "plain"
        ? verifier
        : createHash("sha256").update(verifier).digest("base64url")
      if (computed !== code.codeChallenge) {
        return yield* Effect.fail(
          invalidGrant(
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request."
          )
        )
      }
    }
    code.redeemed = true
    const user = findUser(state, code.username)
    if (user === undefined) return yield* Effect.fail(invalidGrant(50034, "The user account does not exist."))
    return yield* userTokens(state, incoming, { app, user, tenantId: code.tenantId, scopes, alwaysRefreshToken: false })
  })

const refreshToken = (
  state: State,
  incoming: Incoming,
  app: ResolvedApp,
  tenantSegment: string,
  tenantId: string
) =>
  Effect.gen(function*() {
    const value = yield* required(incoming, "refresh_token")
    const scopes = yield* scopesOf(incoming)
    const grant = state.refreshTokens.get(value)
    if (grant === undefined) {
      return yield* Effect.fail(
        invalidGrant(9002313, "Invalid request. Request is malformed or invalid: the refresh token is not recognised.")
      )
    }
    if (grant.clientId !== app.clientId) {
      return yield* Effect.fail(invalidGrant(70000, "The refresh token was issued to a different client."))
    }
    yield* authenticateClient(state, incoming, app, tenantSegment, tenantId, { confidentialOnly: false })
    if (grant.revoked) {
      return yield* Effect.fail(
        invalidGrant(50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed.")
      )
    }
    const user = findUser(state, grant.username)
    if (user === undefined) return yield* Effect.fail(invalidGrant(50034, "The user account does not exist."))
    return yield* userTokens(state, incoming, { app, user, tenantId: grant.tenantId, scopes, alwaysRefreshToken: true })
  })

const deviceCode = (state: State, incoming: Incoming, app: ResolvedApp, tenantSegment: string, tenantId: string) =>
  Effect.gen(function*() {
    const value = yield* required(incoming, "device_code")
    const entry = state.deviceCodes.get(value)
    if (entry === undefined || entry.clientId !== app.clientId) {
      return yield* Effect.fail(
        entraError(
          400,
          "bad_verification_code",
          70000,
          "The provided value for the 'device_code' parameter is not valid."
        )
      )
    }
    yield* authenticateClient(state, incoming, app, tenantSegment, tenantId, { confidentialOnly: false })
    const now = yield* Clock.currentTimeMillis
    if (entry.status._tag === "Redeemed") {
      return yield* Effect.fail(invalidGrant(54005, "OAuth2 device code was already redeemed."))
    }
    if (now > entry.expiresAtMillis) {
      return yield* Effect.fail(entraError(400, "expired_token", 70019, "Verification code expired."))
    }
    if (entry.status._tag === "Denied") {
      return yield* Effect.fail(
        entraError(400, "authorization_declined", 70000, "The user declined the authorization request.")
      )
    }
    if (entry.status._tag === "Pending") {
      return yield* Effect.fail(
        entraError(
          400,
          "authorization_pending",
          70016,
          "OAuth 2.0 device flow error. Authorization is pending. Continue polling."
        )
      )
    }
    const user = findUser(state, entry.status.username)
    if (user === undefined) return yield* Effect.fail(invalidGrant(50034, "The user account does not exist."))
    entry.status = { _tag: "Redeemed" }
    return yield* userTokens(state, incoming, {
      app,
      user,
      tenantId: entry.tenantId,
      scopes: entry.scopes,
      alwaysRefreshToken: false
    })
  })

const password = (state: State, incoming: Incoming, app: ResolvedApp, tenantSegment: string, tenantId: string) =>
  Effect.gen(function*() {
    const username = yield* required(incoming, "username")
    const secret = yield* required(incoming, "password")
    const scopes = yield* scopesOf(incoming)
    yield* authenticateClient(state, incoming, app, tenantSegment, tenantId, { confidentialOnly: false })
    const user = findUser(state, username)
    if (user === undefined) {
      return yield* Effect.fail(
        invalidGrant(50034, `The user account {EUII Hidden} does not exist in the ${tenantId} directory.`)
      )
    }
    if (user.password === undefined || user.password !== secret) {
      return yield* Effect.fail(
        invalidGrant(50126, "Error validating credentials due to invalid username or password.")
      )
    }
    return yield* userTokens(state, incoming, { app, user, tenantId, scopes, alwaysRefreshToken: false })
  })

const onBehalfOf = (state: State, incoming: Incoming, app: ResolvedApp, tenantSegment: string, tenantId: string) =>
  Effect.gen(function*() {
    const assertion = yield* required(incoming, "assertion")
    if (field(incoming, "requested_token_use") !== "on_behalf_of") {
      return yield* Effect.fail(missing("requested_token_use"))
    }
    const scopes = yield* scopesOf(incoming)
    yield* authenticateClient(state, incoming, app, tenantSegment, tenantId, { confidentialOnly: true })
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
    return yield* userTokens(state, incoming, { app, user, tenantId, scopes, alwaysRefreshToken: false })
  })

/** `POST /{tenant}/oauth2/v2.0/token`. @internal */
export const token = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    const segment = incoming.params.tenant ?? ""
    const tenantId = yield* resolveTenant(state, segment)
    const grant = yield* required(incoming, "grant_type")
    const clientId = yield* required(incoming, "client_id")
    const app = yield* findAppOrFail(state, clientId, tenantId)
    switch (grant) {
      case "client_credentials":
        return yield* clientCredentials(state, incoming, app, segment, tenantId)
      case "authorization_code":
        return yield* authorizationCode(state, incoming, app, segment, tenantId)
      case "refresh_token":
        return yield* refreshToken(state, incoming, app, segment, tenantId)
      case deviceCodeGrant:
        return yield* deviceCode(state, incoming, app, segment, tenantId)
      case "password":
        return yield* password(state, incoming, app, segment, tenantId)
      case jwtBearerGrant:
        return yield* onBehalfOf(state, incoming, app, segment, tenantId)
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
  }).pipe(Effect.catchAll((e) => entraReply(incoming, e)))

const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ23456789"

const randomUserCode = Effect.map(
  Effect.all(Array.from({ length: 9 }, () => Random.nextIntBetween(0, userCodeAlphabet.length))),
  (ix) => ix.map((i) => userCodeAlphabet[i]).join("")
)

/** `POST /{tenant}/oauth2/v2.0/devicecode`. @internal */
export const deviceAuthorization = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    const tenantId = yield* resolveTenant(state, incoming.params.tenant)
    const clientId = yield* required(incoming, "client_id")
    const app = yield* findAppOrFail(state, clientId, tenantId)
    const scopes = yield* scopesOf(incoming)
    if (!app.publicClient) {
      return yield* Effect.fail(
        entraError(
          401,
          "invalid_client",
          7000218,
          "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. (The " +
            "app does not allow public client flows.)"
        )
      )
    }
    const now = yield* Clock.currentTimeMillis
    const userCode = yield* randomUserCode
    const device = `DAQABAAEAAAD-emulator-${(yield* randomUuid).replace(/-/g, "")}${
      (yield* randomUuid).replace(/-/g, "")
    }`
    const expiresIn = 900
    const firstUser = state.settings.users[0]
    state.deviceCodes.set(device, {
      clientId: app.clientId,
      tenantId,
      userCode,
      scopes,
      expiresAtMillis: now + expiresIn * 1000,
      status: state.settings.autoApproveDeviceCodes && firstUser !== undefined
        ? { _tag: "Approved", username: firstUser.username }
        : { _tag: "Pending" }
    })
    const verificationUri = `${incoming.baseUrl}/devicelogin`
    return jsonReply(200, {
      user_code: userCode,
      device_code: device,
      verification_uri: verificationUri,
      expires_in: expiresIn,
      interval: state.settings.deviceCodeIntervalSeconds,
      message:
        `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`
    })
  }).pipe(Effect.catchAll((e) => entraReply(incoming, e)))

/** Approves (or denies) a pending device code by its user code. @internal */
export const decideDeviceCode = (
  state: State,
  userCode: string,
  decision: { readonly _tag: "Approved"; readonly username: string } | { readonly _tag: "Denied" }
): boolean => {
  for (const entry of state.deviceCodes.values()) {
    if (entry.userCode === userCode.trim().toUpperCase() && entry.status._tag === "Pending") {
      entry.status = decision
      return true
    }
  }
  return false
}

/** `GET /devicelogin` (a form) and `POST /devicelogin` (`user_code`, optional `username`): approves a code. @internal */
export const deviceLogin = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  Effect.sync(() => {
    if (incoming.method === "GET") {
      return textReply(
        200,
        `<!doctype html><title>Emulator device login</title><form method="post"><label>Code <input name="user_code">` +
          `</label> <label>User <input name="username"></label> <button>Approve</button></form>`,
        "text/html; charset=utf-8"
      )
    }
    const userCode = incoming.form.get("user_code") ?? ""
    const user = findUser(state, incoming.form.get("username") || undefined)
    if (user === undefined) return textReply(400, "No such user.")
    return decideDeviceCode(state, userCode, { _tag: "Approved", username: user.username })
      ? textReply(200, `Approved: ${user.username} is signed in. You can close this window.`)
      : textReply(400, "No pending sign-in has this code.")
  })

/** Mints a single-use authorization code. @internal */
export const mintCode = (
  state: State,
  options: {
    readonly clientId: string
    readonly username: string
    readonly tenantId: string
    readonly redirectUri: string | undefined
    readonly scopes: ReadonlyArray<string>
    readonly codeChallenge: string | undefined
    readonly codeChallengeMethod: string | undefined
  }
): Effect.Effect<string> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const code = `1.emulator-code.${(yield* randomUuid).replace(/-/g, "")}${(yield* randomUuid).replace(/-/g, "")}`
    state.codes.set(code, { ...options, expiresAtMillis: now + 10 * 60 * 1000, redeemed: false })
    return code
  })

const isLoopbackRedirect = (uri: string): boolean => {
  try {
    const u = new URL(uri)
    return u.protocol === "http:" && (u.hostname === "localhost" || u.hostname === "127.0.0.1")
  } catch {
    return false
  }
}

/** What an authorize request asks for, once checked. @internal */
export interface AuthorizeRequest {
  readonly app: ResolvedApp
  readonly tenantId: string
  readonly redirectUri: string
}

/**
 * Checks an authorize request's tenant, `client_id` and `redirect_uri` (parameters read with `q`): the errors Entra
 * shows instead of redirecting.
 *
 * @internal
 */
export const checkAuthorizeRequest = (
  state: State,
  tenantSegment: string | undefined,
  q: (name: string) => string | undefined
): Effect.Effect<AuthorizeRequest, EntraError> =>
  Effect.gen(function*() {
    const tenantId = yield* resolveTenant(state, tenantSegment)
    const clientId = q("client_id")
    if (clientId === undefined) return yield* Effect.fail(missing("client_id"))
    const app = yield* findAppOrFail(state, clientId, tenantId)
    const redirectUri = q("redirect_uri")
    if (redirectUri === undefined) return yield* Effect.fail(missing("redirect_uri"))
    if (!URL.canParse(redirectUri)) {
      return yield* Effect.fail(
        entraError(400, "invalid_request", 90102, "'redirect_uri' value must be a valid absolute URI.")
      )
    }
    const registered = app.redirectUris.length === 0 || app.redirectUris.includes(redirectUri) ||
      (app.publicClient && isLoopbackRedirect(redirectUri))
    if (!registered || !/^https?:\/\//.test(redirectUri)) {
      return yield* Effect.fail(
        entraError(
          400,
          "invalid_request",
          50011,
          `The redirect URI '${
            redirectUri.slice(0, 200)
          }' specified in the request does not match the redirect URIs configured for the application '${app.clientId}'.`
        )
      )
    }
    return { app, tenantId, redirectUri }
  })

/**
 * The redirect back to the app after `user` signed in: a fresh code, `state` and `client_info` in the query.
 *
 * @internal
 */
export const redirectWithCode = (
  state: State,
  request: AuthorizeRequest,
  user: ResolvedUser,
  q: (name: string) => string | undefined
): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    const code = yield* mintCode(state, {
      clientId: request.app.clientId,
      username: user.username,
      tenantId: request.tenantId,
      redirectUri: request.redirectUri,
      scopes: (q("scope") ?? "").split(/\s+/).filter((s) => s !== ""),
      codeChallenge: q("code_challenge"),
      codeChallengeMethod: q("code_challenge_method")
    })
    const target = new URL(request.redirectUri)
    target.searchParams.set("code", code)
    const stateParam = q("state")
    if (stateParam !== undefined) target.searchParams.set("state", stateParam)
    target.searchParams.set("client_info", clientInfo(user, request.tenantId))
    return redirectReply(target.toString())
  })

/** `GET /{tenant}/v2.0/.well-known/openid-configuration`. @internal */
export const openidConfiguration = (state: State, incoming: Incoming): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    const segment = incoming.params.tenant ?? ""
    const tenantId = yield* resolveTenant(state, segment)
    const base = `${incoming.baseUrl}/${segment}`
    const lower = segment.toLowerCase()
    const multi = lower === "common" || lower === "organizations" || lower === "consumers"
    return jsonReply(200, {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ["query", "fragment", "form_post"],
      subject_types_supported: ["pairwise"],
      id_token_signing_alg_values_supported: ["RS256"],
      response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
      scopes_supported: ["openid", "profile", "email", "offline_access"],
      issuer: multi ? `${incoming.baseUrl}/{tenantid}/v2.0` : issuer(incoming.baseUrl, tenantId),
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${incoming.baseUrl}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "nbf",
        "auth_time",
        "name",
        "nonce",
        "preferred_username",
        "oid",
        "tid",
        "ver"
      ],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: null,
      cloud_instance_name: "microsoftonline.com",
      cloud_graph_host_name: "graph.windows.net",
      msgraph_host: "graph.microsoft.com",
      rbac_url: "https://pas.windows.net"
    })
  }).pipe(Effect.catchAll((e) => entraReply(incoming, e)))

/** `GET /{tenant}/discovery/v2.0/keys`: the key the emulator signs tokens with. @internal */
export const keys = (state: State): Effect.Effect<Reply> =>
  Effect.succeed(jsonReply(200, { keys: [state.key.publicJwk] }))

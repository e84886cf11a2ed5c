/**
 * Client authentication at the token endpoint: a client secret, a certificate-signed client assertion (signature,
 * `aud`, time window and `x5t` / `x5t#S256` thumbprint checked against the app's registered certificates), or a
 * federated assertion the emulator minted (workload identity).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { present } from "../http.js"
import type { JwtProblem } from "../jwt.js"
import { decodeHeader, peekClaims, verify } from "../jwt.js"
import type { EntraError } from "../responses.js"
import { entraError } from "../responses.js"
import type { State } from "../state.js"
import type { ClientForm, TokenRequest } from "./common.js"

/** The audience of federated assertions (workload identity). @internal */
export const federatedAudience = "api://AzureADTokenExchange"

/** The issuer of the federated assertions the emulator mints. @internal */
export const federationIssuer = (baseUrl: string): string => `${baseUrl}/federation`

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/** @internal */
export const invalidAssertion = (code: number, description: string) =>
  entraError(401, "invalid_client", code, description)

/** An Entra error for a JWT that does not verify. @internal */
export const describeProblem = (problem: JwtProblem, nowMillis: number, token: string): EntraError => {
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
  request: TokenRequest,
  assertion: string
): Effect.Effect<void, EntraError> =>
  Effect.gen(function*() {
    const nowMillis = yield* Clock.currentTimeMillis
    const header = decodeHeader(assertion)
    if (Either.isLeft(header)) return yield* Effect.fail(describeProblem(header.left, nowMillis, assertion))
    const { app, tenantId, tenantSegment } = request
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
      const audiences = [...new Set([tenantSegment, tenantId])].map((t) => `${request.baseUrl}/${t}/oauth2/v2.0/token`)
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

/** Checks the client's secret or assertion; public clients may send neither. @internal */
export const authenticateClient = (
  state: State,
  request: TokenRequest,
  form: ClientForm,
  options: { readonly confidentialOnly: boolean }
): Effect.Effect<void, EntraError> => {
  const app = request.app
  const secret = present(form.client_secret)
  const assertion = present(form.client_assertion)
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
    if (present(form.client_assertion_type) !== assertionType) {
      return Effect.fail(
        entraError(
          400,
          "invalid_request",
          900144,
          `The request body must contain the following parameter: 'client_assertion_type' (${assertionType}).`
        )
      )
    }
    return verifyAssertion(state, request, assertion)
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

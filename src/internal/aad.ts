import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AccessToken from "../AccessToken.js"
import { ClientAuthenticationError, CredentialUnavailableError } from "../IdentityError.js"
import type { RetryOptions } from "../RetryOptions.js"
import type { FormRequest, Outcome, RawResponse } from "./http.js"
import {
  defaultRetryPolicy,
  describeBody,
  makeClient,
  maxBodyBytes,
  parseJson,
  parseRaw,
  randomUuid,
  resolvePolicy,
  sendWithRetry
} from "./http.js"
import { lazy } from "./lazy.js"
import * as Scrub from "./scrub.js"

/** @internal */
export const libraryVersion = "0.1.0"

/** @internal */
export const userAgent = `effect-azure-identity/${libraryVersion}`

/** `{authorityHost}/{tenant}/oauth2/v2.0/token`, or the v1 ADFS endpoint for tenant `adfs`. @internal */
export const tokenEndpoint = (authorityHost: string, tenantId: string): string =>
  tenantId.toLowerCase() === "adfs"
    ? `${authorityHost}/adfs/oauth2/token`
    : `${authorityHost}/${tenantId}/oauth2/v2.0/token`

/** The claims parameter declaring CAE support (client capability CP1). @internal */
export const cp1Claims = { access_token: { xms_cc: { values: ["CP1"] } } }

/**
 * The `claims` form value: the challenge claims, merged with the CP1 capability when CAE is on. A challenge that is
 * not a JSON object is forwarded verbatim.
 *
 * @internal
 */
export const mergeClaims = (claims: string | undefined, enableCae: boolean): string | undefined => {
  const challenge = claims === undefined || claims.trim() === "" ? undefined : claims
  if (!enableCae) return challenge
  if (challenge === undefined) return JSON.stringify(cp1Claims)
  const parsed = parseJson(challenge)
  if (Option.isNone(parsed) || typeof parsed.value !== "object" || parsed.value === null) return challenge
  const merged: Record<string, any> = { ...(parsed.value as Record<string, unknown>) }
  const at = typeof merged.access_token === "object" && merged.access_token !== null ? merged.access_token : {}
  merged.access_token = { ...at, xms_cc: cp1Claims.access_token.xms_cc }
  return JSON.stringify(merged)
}

/** The latest instant a JavaScript `Date` (and so a `DateTime`) can hold. @internal */
export const maxEpochMillis = 8_640_000_000_000_000

/** The longest access token accepted: Entra tokens are a few kilobytes; anything near this is not a token. @internal */
export const maxAccessTokenLength = 64 * 1024

/** Control characters (C0, DEL, C1) never occur in a token; one would corrupt an `Authorization` header. @internal */
export const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/

/** An access token: not empty, at most {@link maxAccessTokenLength} characters, no control character. @internal */
export const AccessTokenString = lazy(() =>
  Schema.String.pipe(
    Schema.minLength(1),
    Schema.maxLength(maxAccessTokenLength),
    Schema.filter((s) => !controlCharacter.test(s))
  )
)

/** The headers every request to Entra carries, set once on the layer's client. @internal */
export const entraHeaders: Readonly<Record<string, string>> = {
  accept: "application/json",
  "user-agent": userAgent,
  "x-client-sku": "effect-azure-identity",
  "x-client-ver": libraryVersion
}

/** The client a credential layer builds once for Entra: its fixed headers, no trace propagation. @internal */
export const entraClient = (client: HttpClient.HttpClient): HttpClient.HttpClient => makeClient(client, entraHeaders)

/** The token endpoint's answers, built on first use (see `lazy.ts`). */
const bodies = lazy(() => {
  const Seconds = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.finite(), Schema.nonNegative())
  const TokenSuccessBody = Schema.Struct({
    access_token: AccessTokenString(),
    token_type: Schema.optional(Schema.String),
    expires_in: Seconds,
    refresh_in: Schema.optional(Seconds),
    ext_expires_in: Schema.optional(Schema.Unknown),
    refresh_token: Schema.optional(Schema.String),
    id_token: Schema.optional(Schema.String),
    client_info: Schema.optional(Schema.String),
    scope: Schema.optional(Schema.String),
    foci: Schema.optional(Schema.Unknown)
  })
  const TokenErrorBody = Schema.Struct({
    error: Schema.String,
    error_description: Schema.optional(Schema.String),
    error_codes: Schema.optional(Schema.Array(Schema.Number)),
    trace_id: Schema.optional(Schema.String),
    correlation_id: Schema.optional(Schema.String),
    timestamp: Schema.optional(Schema.String),
    claims: Schema.optional(Schema.String)
  })
  return {
    decodeSuccess: Schema.decodeUnknownEither(TokenSuccessBody),
    decodeError: Schema.decodeUnknownEither(TokenErrorBody)
  }
})

/** A successful token response, decoded. @internal */
export interface TokenResponse {
  readonly accessToken: AccessToken.AccessToken
  readonly refreshToken: Option.Option<Redacted.Redacted<string>>
  readonly idToken: Option.Option<string>
  readonly clientInfo: Option.Option<string>
  readonly scope: Option.Option<string>
  readonly foci: boolean
}

/** Names the fields a schema rejected, never their values. @internal */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const fields = [...new Set(issues.map((i) => (i.path.length === 0 ? "the body" : i.path.map(String).join("."))))]
  const missing = issues.filter((i) => i._tag === "Missing").map((i) => i.path.map(String).join("."))
  const wrong = fields.filter((f) => !missing.includes(f))
  const parts: Array<string> = []
  if (missing.length > 0) parts.push(`missing ${missing.join(", ")}`)
  if (wrong.length > 0) parts.push(`wrong type or value for ${wrong.join(", ")}`)
  return parts.join("; ")
}

/** What to do about well-known AADSTS codes. @internal */
export const hintFor = (codes: ReadonlyArray<number>, error: string | undefined): string | undefined => {
  const has = (code: number) => codes.includes(code)
  if (has(7000215)) {
    return "The client secret is wrong: use the secret's value (not its id) and check that it has not been rotated."
  }
  if (has(7000222)) return "The client secret has expired: create a new one for the app registration."
  if (has(700016)) return "No app with this client id exists in the tenant: check the client id and the tenant id."
  if (has(90002) || has(90023)) return "The tenant was not found: check the tenant id and the authority host (cloud)."
  if (has(700024)) {
    return "The client assertion is outside its validity window: check the machine clock, and that a federated " +
      "token file is fresh (it is re-read for every request)."
  }
  if (has(700027)) {
    return "The assertion signature was not accepted: upload this certificate to the app registration, or check " +
      "the key matches the certificate."
  }
  if (has(70011)) {
    return "The scope is invalid: app-only tokens need \"{resource}/.default\", e.g. \"https://graph.microsoft.com/.default\"."
  }
  if (has(7000218)) return "The request had no client secret or assertion: configure one for a confidential client."
  if (has(54005)) return "The authorization code was already redeemed: codes are single-use, get a new one."
  if (has(70008) || has(700082) || has(50173) || has(700084)) {
    return "The refresh token has expired or was revoked: the user must sign in again."
  }
  if (has(50076) || has(50079) || has(50158)) return "Multi-factor authentication is required: sign in interactively."
  if (has(65001)) return "The user or an administrator has not consented to this app: grant consent first."
  if (error === "invalid_grant") return "The grant was rejected: the user may need to sign in again."
  if (error === "invalid_client") {
    return "The client credentials were rejected: check the client id, secret or certificate."
  }
  return undefined
}

/**
 * Turns the outcome of a token request into a token or a typed error. Expiry counts from the moment the request was
 * sent. `remove` takes every secret of the request out of server text (see `scrub.ts`): the body is scrubbed whole
 * before anything (an OAuth error field, an HTML title, a header) is read from it, so a clipped echo cannot leave a
 * piece of a secret behind.
 *
 * @internal
 */
export const interpret = (
  credential: string,
  outcome: Outcome,
  remove: (text: string) => string = (text) => text
): Either.Either<TokenResponse, ClientAuthenticationError | CredentialUnavailableError> => {
  const after = outcome.attempts > 1 ? ` after ${outcome.attempts} attempts` : ""
  if (Either.isLeft(outcome.result)) {
    const failure = outcome.result.left
    if (failure.kind === "too-large") {
      return Either.left(
        new ClientAuthenticationError({
          credential,
          code: "invalid-response",
          ...(failure.status !== undefined ? { status: failure.status } : {}),
          reason: `the token endpoint ${outcome.url} answered HTTP ${failure.status} with a body larger than ` +
            `${maxBodyBytes} bytes, which was not read: check that the authority host points at Microsoft Entra ID`
        })
      )
    }
    return Either.left(
      new CredentialUnavailableError({
        credential,
        code: failure.kind === "invalid-url"
          ? "invalid-configuration"
          : failure.kind === "timeout"
          ? "timeout"
          : "endpoint-unreachable",
        reason: failure.kind === "invalid-url"
          ? `the token endpoint URL ${outcome.url} is invalid: check the authority host and tenant id`
          : `no answer from the token endpoint ${outcome.url}${after} (${
            Scrub.sanitize(failure.description, { remove, maxLength: 300 })
          }): check network access, proxy settings and the authority host (AZURE_AUTHORITY_HOST)`
      })
    )
  }
  const raw = outcome.result.right
  if (raw.status >= 200 && raw.status < 300) {
    const success = interpretSuccess(credential, outcome, raw, remove)
    return Either.isRight(success) ? success : Either.left(Scrub.scrubError(success.left, remove))
  }
  return Either.left(Scrub.scrubError(interpretError(credential, outcome, Scrub.scrubResponse(raw, remove)), remove))
}

const interpretSuccess = (
  credential: string,
  outcome: Outcome,
  response: RawResponse,
  remove: (text: string) => string
): Either.Either<TokenResponse, ClientAuthenticationError> => {
  // The common answer is checked by hand (what the schema checks, for the fields Entra sends); anything else —
  // a number as a string, a wrong type, a missing field — is decoded by the schema, which also names the problem.
  const quick = quickSuccessBody(parseRaw(response.text))
  if (quick !== undefined) return tokenResponse(credential, outcome, response, quick)
  const json = parseJson(response.text)
  if (Option.isNone(json)) {
    const scrubbed = Scrub.scrubResponse(response, remove)
    return Either.left(
      new ClientAuthenticationError({
        credential,
        code: "invalid-response",
        status: response.status,
        reason: `the token endpoint ${outcome.url} answered HTTP ${response.status} with ${
          describeBody(scrubbed)
        }: check that the authority host points at Microsoft Entra ID`
      })
    )
  }
  const decoded = bodies().decodeSuccess(json.value)
  if (Either.isLeft(decoded)) {
    return Either.left(
      new ClientAuthenticationError({
        credential,
        code: "invalid-response",
        status: response.status,
        reason: `the token endpoint ${outcome.url} answered HTTP ${response.status} without a usable token (${
          describeParseError(decoded.left)
        }): check that the authority host points at Microsoft Entra ID`
      })
    )
  }
  return tokenResponse(credential, outcome, response, decoded.right)
}

/** The fields of a successful answer that are read. */
interface SuccessBody {
  readonly access_token: string
  readonly token_type?: string | undefined
  readonly expires_in: number
  readonly refresh_in?: number | undefined
  readonly refresh_token?: string | undefined
  readonly id_token?: string | undefined
  readonly client_info?: string | undefined
  readonly scope?: string | undefined
  readonly foci?: unknown
}

const isSeconds = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value) && value >= 0

const isOptionalString = (value: unknown): value is string | undefined =>
  value === undefined || typeof value === "string"

/**
 * The answer when it passes, field by field, what the success schema checks (numbers as numbers only); else
 * `undefined`, and the schema decides.
 */
const quickSuccessBody = (parsed: Option.Option<unknown>): SuccessBody | undefined => {
  if (Option.isNone(parsed)) return undefined
  const body = parsed.value
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined
  const b = body as Record<string, unknown>
  const token = b.access_token
  return typeof token === "string" && token.length >= 1 && token.length <= maxAccessTokenLength &&
      !controlCharacter.test(token) && isSeconds(b.expires_in) &&
      (b.refresh_in === undefined || isSeconds(b.refresh_in)) && isOptionalString(b.token_type) &&
      isOptionalString(b.refresh_token) && isOptionalString(b.id_token) && isOptionalString(b.client_info) &&
      isOptionalString(b.scope)
    ? b as unknown as SuccessBody
    : undefined
}

const tokenResponse = (
  credential: string,
  outcome: Outcome,
  response: RawResponse,
  body: SuccessBody
): Either.Either<TokenResponse, ClientAuthenticationError> => {
  const expiresOnMillis = outcome.sentAtMillis + Math.round(body.expires_in * 1000)
  if (!(expiresOnMillis <= maxEpochMillis)) {
    return Either.left(
      new ClientAuthenticationError({
        credential,
        code: "invalid-response",
        status: response.status,
        reason: `the token endpoint ${outcome.url} answered HTTP ${response.status} with an expires_in beyond any ` +
          `representable date: check that the authority host points at Microsoft Entra ID`
      })
    )
  }
  return Either.right({
    accessToken: AccessToken.make({
      token: body.access_token,
      obtainedAtMillis: outcome.sentAtMillis,
      expiresOnMillis,
      refreshInMillis: body.refresh_in === undefined ? undefined : body.refresh_in * 1000,
      tokenType: body.token_type
    }),
    refreshToken: body.refresh_token === undefined || body.refresh_token === ""
      ? Option.none()
      : Option.some(Redacted.make(body.refresh_token)),
    idToken: Option.fromNullable(body.id_token),
    clientInfo: Option.fromNullable(body.client_info),
    scope: Option.fromNullable(body.scope),
    foci: body.foci === "1" || body.foci === 1 || body.foci === true
  })
}

const interpretError = (credential: string, outcome: Outcome, response: RawResponse): ClientAuthenticationError => {
  const after = outcome.attempts > 1 ? ` after ${outcome.attempts} attempts` : ""
  const json = parseJson(response.text)
  const decoded = Option.isSome(json) ? bodies().decodeError(json.value) : undefined
  if (decoded === undefined || Either.isLeft(decoded)) {
    const transient = response.status === 429 || response.status >= 500
    return new ClientAuthenticationError({
      credential,
      code: "invalid-response",
      status: response.status,
      reason: `the token endpoint ${outcome.url} answered HTTP ${response.status}${after} with ${
        Option.isSome(json) ? "a JSON body that is not an OAuth error" : describeBody(response)
      }${transient ? ": the service is unavailable or throttling, try again later" : ""}`
    })
  }
  const body = decoded.right
  const codes = body.error_codes ?? []
  const hint = hintFor(codes, body.error)
  const description = body.error_description === undefined
    ? undefined
    : Scrub.sanitize(body.error_description.split(/\r?\n/)[0] ?? "", { maxLength: Scrub.defaultMaxLength })
  return new ClientAuthenticationError({
    credential,
    code: "rejected-by-authority",
    status: response.status,
    error: body.error,
    ...(body.error_description !== undefined ? { errorDescription: body.error_description } : {}),
    ...(body.error_codes !== undefined ? { errorCodes: body.error_codes } : {}),
    ...(body.correlation_id !== undefined ? { correlationId: body.correlation_id } : {}),
    ...(body.trace_id !== undefined ? { traceId: body.trace_id } : {}),
    ...(body.timestamp !== undefined ? { timestamp: body.timestamp } : {}),
    ...(body.claims !== undefined ? { claims: body.claims } : {}),
    reason: `${body.error} (HTTP ${response.status}${after})${description ? `: ${description}` : ""}${
      hint ? ` ${hint}` : ""
    }${body.correlation_id ? ` [correlation id ${body.correlation_id}]` : ""}`
  })
}

/** Form values: plain strings, or secrets unwrapped only here, when the body is built. @internal */
export type FormValue = string | Redacted.Redacted<string>

/** @internal */
export interface TokenRequest {
  readonly credential: string
  readonly authorityHost: string
  readonly tenantId: string
  readonly scopes: ReadonlyArray<string>
  /** Grant fields (`grant_type`, `client_id`, …), built for every attempt so an assertion is fresh each time. */
  readonly form: Effect.Effect<
    Readonly<Record<string, FormValue | undefined>>,
    ClientAuthenticationError | CredentialUnavailableError
  >
  readonly claims?: string | undefined
  readonly retryPolicy?: RetryOptions | undefined
  /** The first attempt, already made outside a fiber (`sendDirect`) with these grant fields: continued from here. */
  readonly first?: {
    readonly outcome: Outcome
    readonly fields: Readonly<Record<string, FormValue | undefined>>
  } | undefined
}

/** @internal */
export const buildForm = (
  fields: Readonly<Record<string, FormValue | undefined>>
): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue
    out[k] = Redacted.isRedacted(v) ? Redacted.value(v) : v
  }
  return out
}

/**
 * The POST of a token request: the grant fields, `scope` and `claims` as a form, and the request id. @internal
 */
export const tokenHttpRequest = (
  url: string,
  requestId: string,
  fields: Readonly<Record<string, FormValue | undefined>>,
  scope: string,
  claims: string | undefined
): HttpClientRequest.HttpClientRequest =>
  HttpClientRequest.post(url).pipe(
    HttpClientRequest.setHeader("client-request-id", requestId),
    HttpClientRequest.bodyUrlParams(buildForm({ ...fields, scope, claims }))
  )

const encoder = new TextEncoder()

/**
 * Grant fields encoded once as a form (`URLSearchParams`, without `scope` and `claims`), for
 * {@link tokenFormRequest}: a credential's fixed fields (client id, grant type, secret) are not encoded again for
 * every request. @internal
 */
export const encodeFields = (fields: Readonly<Record<string, FormValue | undefined>>): string =>
  new URLSearchParams(buildForm(fields)).toString()

/** Characters `encodeURIComponent` leaves as they are and a form encodes, and the space (`+` in a form). */
const formDifferences = /%20|[!'()~]/g
const formDifference = (match: string) => match === "%20" ? "+" : `%${match.charCodeAt(0).toString(16).toUpperCase()}`

/**
 * One value encoded as `URLSearchParams` encodes it (application/x-www-form-urlencoded: UTF-8, `*-._` and
 * alphanumerics as they are, the space as `+`, everything else `%XX`), through the native `encodeURIComponent`.
 * @internal
 */
export const formValue = (value: string): string => {
  try {
    return encodeURIComponent(value).replace(formDifferences, formDifference)
  } catch {
    // a lone surrogate: `URLSearchParams` sends it as U+FFFD
    return new URLSearchParams([["", value]]).toString().slice(1)
  }
}

/**
 * The same request as {@link tokenHttpRequest}, as bytes for a direct exchange (`sendDirect`): the form encoded
 * alike (the grant fields as {@link encodeFields} encoded them, then `scope` and `claims`), the same headers.
 * @internal
 */
export const tokenFormRequest = (
  url: string,
  requestId: string,
  encodedFields: string,
  scope: string,
  claims: string | undefined
): FormRequest => {
  const form = `${encodedFields}${encodedFields === "" ? "" : "&"}scope=${formValue(scope)}${
    claims === undefined ? "" : `&claims=${formValue(claims)}`
  }`
  const body = encoder.encode(form)
  return {
    url,
    headers: {
      "client-request-id": requestId,
      "content-type": "application/x-www-form-urlencoded",
      "content-length": String(body.length)
    },
    body
  }
}

/**
 * POSTs a token request to the Entra token endpoint with retries, and decodes the answer. `client` is the layer's
 * client from {@link entraClient} (it adds the fixed headers); each request gets a fresh `client-request-id`.
 *
 * @internal
 */
export const requestToken = (
  client: HttpClient.HttpClient,
  request: TokenRequest
): Effect.Effect<TokenResponse, ClientAuthenticationError | CredentialUnavailableError> => {
  const url = tokenEndpoint(request.authorityHost, request.tenantId)
  // every secret sent (secret, password, assertion, refresh token, code…: the form's Redacted values), per attempt
  const secrets = new Set<Redacted.Redacted<string>>()
  const scope = request.scopes.join(" ")
  const remember = (fields: Readonly<Record<string, FormValue | undefined>>) => {
    for (const value of Object.values(fields)) if (Redacted.isRedacted(value)) secrets.add(value)
  }
  const makeRequest = Effect.flatMap(request.form, (fields) => {
    remember(fields)
    return Effect.map(randomUuid, (requestId) => tokenHttpRequest(url, requestId, fields, scope, request.claims))
  })
  if (request.first !== undefined) remember(request.first.fields)
  const policy = resolvePolicy(request.retryPolicy, defaultRetryPolicy)
  return sendWithRetry(client, makeRequest, policy, request.first?.outcome).pipe(
    Effect.flatMap((outcome) => {
      // the secrets' pattern is built only when server text has to be cleaned (an error): never for a token
      let remover: ((text: string) => string) | undefined
      return interpret(request.credential, outcome, (text) => (remover ??= Scrub.secretRemover(secrets))(text))
    }),
    Effect.withSpan(`${request.credential}.requestToken`, {
      // the span's creation site is always this line: no `Error` stack captured per request
      captureStackTrace: false,
      attributes: {
        "azure.identity.credential": request.credential,
        "azure.identity.tenant": request.tenantId,
        "azure.identity.scopes": scope,
        "azure.identity.authority": request.authorityHost
      }
    })
  )
}

/**
 * What every managed-identity source shares: the identity selector, the `Source` interface, the common request
 * headers, secret-header redaction, and the mapping of an HTTP outcome to a token or a typed error.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as AccessToken from "../../AccessToken.js"
import { ClientAuthenticationError, CredentialUnavailableError } from "../../IdentityError.js"
import type * as IdentityError from "../../IdentityError.js"
import { libraryVersion, userAgent } from "../aad.js"
import type { Outcome, RawResponse, RetryPolicy } from "../http.js"
import { describeBody, makeClient, maxBodyBytes, parseJson, randomUuid, sendWithRetry } from "../http.js"
import * as Scrub from "../scrub.js"
import { errorFields, parseTokenBody } from "./response.js"

/** Which identity to ask for. @internal */
export type Identity =
  | { readonly _tag: "SystemAssigned" }
  | { readonly _tag: "ClientId"; readonly value: string }
  | { readonly _tag: "ObjectId"; readonly value: string }
  | { readonly _tag: "ResourceId"; readonly value: string }

/** @internal */
export const systemAssigned: Identity = { _tag: "SystemAssigned" }

/** @internal */
export const describeIdentity = (identity: Identity): string => {
  switch (identity._tag) {
    case "SystemAssigned":
      return "the system-assigned identity"
    case "ClientId":
      return `the user-assigned identity with client id ${identity.value}`
    case "ObjectId":
      return `the user-assigned identity with object id ${identity.value}`
    case "ResourceId":
      return `the user-assigned identity ${identity.value}`
  }
}

/** A stable key for the identity, part of every cache key. @internal */
export const identityKey = (identity: Identity): string =>
  identity._tag === "SystemAssigned" ? "system" : `${identity._tag}:${identity.value}`

/** The errors a source fails with. @internal */
export type SourceError = CredentialUnavailableError | ClientAuthenticationError

/** One managed-identity host. @internal */
export interface Source {
  /** What the host is called in messages, e.g. `IMDS`, `App Service`. */
  readonly label: string
  /** A token for one resource (a scope without `/.default`). */
  readonly getToken: (resource: string) => Effect.Effect<AccessToken.AccessToken, SourceError>
}

/** What a source needs from the credential. @internal */
export interface SourceContext {
  readonly credential: string
  readonly client: HttpClient.HttpClient
  readonly identity: Identity
  /** The policy for sources other than IMDS (IMDS has its own). */
  readonly retryPolicy: RetryPolicy
}

/** A source that cannot work, with the reason. @internal */
export const unavailableSource = (credential: string, label: string, reason: string): Source => ({
  label,
  getToken: () => Effect.fail(new CredentialUnavailableError({ credential, reason, code: "not-configured" }))
})

/** The refusal of a user-assigned identity on a host that does not support one. @internal */
export const userAssignedUnsupported = (ctx: SourceContext, label: string, explanation: string): Source =>
  unavailableSource(
    ctx.credential,
    label,
    `${label} does not support ${describeIdentity(ctx.identity)}: ${explanation}. Remove the clientId, objectId ` +
      `or resourceId option (and AZURE_CLIENT_ID where it is used as one) to use the host's identity`
  )

/** Headers carrying secrets: redacted in spans and logs while managed-identity requests run. @internal */
export const secretHeaderNames: ReadonlyArray<string> = ["x-identity-header", "secret", "authorization"]

/** Runs `self` with the secret headers of every managed-identity host added to `Headers.currentRedactedNames`. @internal */
export const withRedactedHeaders = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locallyWith(self, Headers.currentRedactedNames, (names) => [
    ...names,
    ...secretHeaderNames.filter((n) => !names.includes(n))
  ])

/** The headers every managed-identity request carries, set once on the layer's client. @internal */
export const fixedHeaders: Readonly<Record<string, string>> = {
  accept: "application/json",
  "user-agent": userAgent,
  "x-client-sku": "effect-azure-identity",
  "x-client-ver": libraryVersion
}

/** The client a managed-identity layer builds once: its fixed headers, no trace propagation. @internal */
export const managedIdentityClient = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  makeClient(client, fixedHeaders)

/** `x-ms-client-request-id`, fresh for every request (the fixed headers come from the client). @internal */
export const commonHeaders: Effect.Effect<Record<string, string>> = Effect.map(randomUuid, (requestId) => ({
  "x-ms-client-request-id": requestId
}))

/** How one source's answers are read. @internal */
export interface Interpretation {
  readonly credential: string
  readonly label: string
  /** Secret values (header values, key file) removed from anything an error might echo. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** IMDS: any 400 and a 403 mentioning "unreachable" mean "no usable identity here", and non-JSON means "not IMDS". */
  readonly imds?: boolean | undefined
  /** Says what to check when no answer came, e.g. which variable names the endpoint. */
  readonly noResponseHint: string
}

const identityNotFoundPattern =
  /identity not found|ManagedIdentityNotFound|identity (?:has|was) not been assigned|not (?:been )?assigned|no (?:managed )?identity/i

/** The error body of an answer as one line, with secrets removed. @internal */
export const describeError = (response: RawResponse, secrets: ReadonlyArray<string>): {
  readonly detail: string
  readonly error: string | undefined
  readonly description: string | undefined
} => {
  const remove = Scrub.secretRemover(secrets)
  const safe = Scrub.scrubResponse(response, remove)
  const fields = errorFields(safe.text)
  if (Option.isNone(fields)) return { detail: describeBody(safe), error: undefined, description: undefined }
  const error = fields.value.error === undefined ? undefined : remove(fields.value.error)
  const description = fields.value.description === undefined ? undefined : remove(fields.value.description)
  return {
    detail: [error, description].filter((s) => s !== undefined).join(": "),
    error,
    description
  }
}

/**
 * Turns the outcome of a token request into a token or a typed error:
 *
 * - no answer → `CredentialUnavailableError` (no managed-identity endpoint here);
 * - 2xx → the token, or `ClientAuthenticationError` when it is unusable (IMDS: non-JSON is "not IMDS", unavailable);
 * - 400 "identity not found" (any 400 from IMDS) and IMDS 403 "unreachable" → `CredentialUnavailableError`;
 * - any other status → `ClientAuthenticationError` with the host's error code and message.
 *
 * @internal
 */
export const interpret = (
  how: Interpretation,
  outcome: Outcome
): Either.Either<AccessToken.AccessToken, SourceError> => {
  const { credential, label } = how
  const secrets = how.secrets.map(Redacted.value)
  const after = outcome.attempts > 1 ? ` after ${outcome.attempts} attempts` : ""
  const unavailable = (reason: string, code: IdentityError.ReasonCode = "endpoint-unreachable") =>
    Either.left(new CredentialUnavailableError({ credential, reason, code }))
  if (Either.isLeft(outcome.result)) {
    const failure = outcome.result.left
    if (failure.kind === "too-large") {
      const reason = `the ${label} endpoint ${outcome.url} answered HTTP ${failure.status} with a body larger than ` +
        `${maxBodyBytes} bytes, which was not read`
      return how.imds
        ? unavailable(`${reason}: something other than IMDS answered (a proxy?), so there is no managed identity here`)
        : Either.left(
          new ClientAuthenticationError({
            credential,
            code: "invalid-response",
            ...(failure.status !== undefined ? { status: failure.status } : {}),
            reason
          })
        )
    }
    return failure.kind === "invalid-url"
      ? unavailable(`the ${label} endpoint URL is invalid: ${how.noResponseHint}`, "invalid-configuration")
      : unavailable(
        `no response from the ${label} endpoint ${outcome.url}${after} (${failure.description}): ${how.noResponseHint}`,
        failure.kind === "timeout" ? "timeout" : "endpoint-unreachable"
      )
  }
  const response = Scrub.scrubResponse(outcome.result.right, Scrub.secretRemover(secrets))
  if (response.status >= 200 && response.status < 300) {
    const json = parseJson(response.text)
    if (Option.isNone(json)) {
      const reason = `the ${label} endpoint ${outcome.url} answered HTTP ${response.status} with ${
        describeBody(response)
      }`
      return how.imds
        ? unavailable(`${reason}: something other than IMDS answered (a proxy?), so there is no managed identity here`)
        : Either.left(
          new ClientAuthenticationError({ credential, code: "invalid-response", status: response.status, reason })
        )
    }
    return Either.mapLeft(
      parseTokenBody(json.value, outcome.sentAtMillis),
      (problem) =>
        new ClientAuthenticationError({
          credential,
          code: "invalid-response",
          status: response.status,
          reason: `the ${label} endpoint ${outcome.url} answered HTTP ${response.status} without a usable token ` +
            `(${problem})`
        })
    )
  }
  const { description, detail, error } = describeError(response, secrets)
  const status = response.status
  if (status === 400 && (how.imds === true || identityNotFoundPattern.test(response.text))) {
    return unavailable(
      `the ${label} endpoint answered HTTP 400 (${detail}): the requested identity is not assigned to this ` +
        `resource. Assign a managed identity to it, or check the clientId, objectId or resourceId option`,
      "not-configured"
    )
  }
  if (how.imds === true && status === 403 && /unreachable/i.test(response.text)) {
    return unavailable(
      `IMDS is unreachable: a proxy answered HTTP 403 (${detail}), as Docker Desktop does when the machine is not ` +
        `an Azure VM. Use another credential here`
    )
  }
  const hint = status === 410
    ? ": IMDS is being updated and did not come back in time; try again in a minute"
    : status === 429 || status >= 500
    ? ": the endpoint is unavailable or throttling; try again later"
    : status === 401 || status === 403
    ? ": the endpoint refused the request's credentials; check the managed identity environment variables"
    : ""
  return Either.left(
    new ClientAuthenticationError({
      credential,
      code: "rejected-by-authority",
      status,
      ...(error !== undefined ? { error } : {}),
      ...(description !== undefined ? { errorDescription: description } : {}),
      reason: `the ${label} endpoint ${outcome.url} answered HTTP ${status}${after} (${detail})${hint}`
    })
  )
}

/** Sends a token request with retries (secret headers redacted) and interprets the answer. @internal */
export const fetchToken = (
  client: HttpClient.HttpClient,
  how: Interpretation,
  makeRequest: Effect.Effect<HttpClientRequest.HttpClientRequest>,
  policy: RetryPolicy
): Effect.Effect<AccessToken.AccessToken, SourceError> =>
  sendWithRetry(client, makeRequest, policy).pipe(
    Effect.flatMap((outcome) => interpret(how, outcome)),
    Effect.mapError((error) => Scrub.scrubError(error, Scrub.secretRemover(how.secrets))),
    withRedactedHeaders,
    Scrub.withAllHeadersRedacted
  )

/** Appends the query parameter naming a user-assigned identity, with the host's spelling. @internal */
export const identityParams = (
  identity: Identity,
  names: { readonly clientId: string; readonly objectId: string; readonly resourceId: string }
): Record<string, string> => {
  switch (identity._tag) {
    case "SystemAssigned":
      return {}
    case "ClientId":
      return { [names.clientId]: identity.value }
    case "ObjectId":
      return { [names.objectId]: identity.value }
    case "ResourceId":
      return { [names.resourceId]: identity.value }
  }
}

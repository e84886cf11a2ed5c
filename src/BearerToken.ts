/**
 * `HttpClient` middleware that authenticates requests with a bearer token from a `TokenCredential`, the way the
 * Azure SDK's bearer-token policy does:
 *
 * - adds `Authorization: Bearer …` for the given scopes to every request (tokens come from the credential's cache);
 * - refuses any URL that is not `https:` with an `InsecureUrlError`: a token is never sent in clear text, not even
 *   to a loopback address. Apply `HttpClient.followRedirects` after this middleware (outside it), so that every hop
 *   is checked and authorized anew: a client that follows redirects inside it re-sends the request, `Authorization`
 *   included, to wherever it is redirected;
 * - on a `401` carrying `WWW-Authenticate: Bearer`, handles
 *   - the Continuous Access Evaluation claims challenge (`error="insufficient_claims", claims="<base64 JSON>"`):
 *     gets a new token with the decoded claims (bypassing the cache) and retries the request once;
 *   - the tenant challenge (`authorization_uri` / `authorization` naming a tenant other than the one asked for):
 *     gets a token for that tenant (the credential must allow it, see `additionallyAllowedTenants`) and retries
 *     once;
 * - retries at most once per request: a second `401` is returned to the caller as is. A request whose body is a
 *   stream cannot be replayed, so its `401` is returned without a retry.
 * - `Authorization` stays in `Headers.currentRedactedNames` while the request runs, so logs and spans show
 *   `<redacted>`.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { BearerToken } from "effect-azure-identity"
 *
 * const program = Effect.gen(function*() {
 *   const client = (yield* HttpClient.HttpClient).pipe(
 *     BearerToken.authenticate({ scopes: "https://management.azure.com/.default" })
 *   )
 *   const response = yield* client.get("https://management.azure.com/subscriptions?api-version=2022-12-01")
 *   return yield* response.json
 * })
 * // provide a credential layer (TokenCredential) and an HttpClient at the edge
 * ```
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AuthorityHost from "./AuthorityHost.js"
import type { IdentityError } from "./IdentityError.js"
import { ClientAuthenticationError } from "./IdentityError.js"
import { safeUrl } from "./internal/http.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * What to ask the credential for: the `scopes` of the resource called (required), and optionally another `tenantId` and
 * Continuous Access Evaluation (`enableCae`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The scopes of the tokens, e.g. `https://management.azure.com/.default`. */
  readonly scopes: string | ReadonlyArray<string>
  /** Ask for tokens in this tenant instead of the credential's own. */
  readonly tenantId?: string | undefined
  /** Declare Continuous Access Evaluation support (CP1). Default `true`, as the Azure SDK does. */
  readonly enableCae?: boolean | undefined
}

/**
 * The request was not sent: its URL is not `https:`, and a bearer token must never travel in clear text.
 *
 * @since 0.1.0
 * @category errors
 */
export class InsecureUrlError extends Schema.TaggedError<InsecureUrlError>(
  "effect-azure-identity/InsecureUrlError"
)("InsecureUrlError", {
  method: Schema.String,
  /** Origin and path only: never the query string. */
  url: Schema.String
}) {
  override get message(): string {
    return `refused to send a bearer token with ${this.method} ${this.url}: only https: URLs may carry a token ` +
      `(use the https:// address of the service)`
  }
}

/**
 * What the middleware adds to a client's errors.
 *
 * @since 0.1.0
 * @category errors
 */
export type BearerTokenError = IdentityError | InsecureUrlError

/** Printable ASCII without space: what a bearer token may hold (RFC 6750 `b64token` and every opaque token). */
const headerSafeToken = /^[\x21-\x7e]+$/

// -----------------------------------------------------------------------------
// WWW-Authenticate
// -----------------------------------------------------------------------------

/**
 * One challenge of a `WWW-Authenticate` header. The scheme keeps its case; parameter names are lower-cased.
 *
 * @since 0.1.0
 * @category challenges
 */
export interface Challenge {
  readonly scheme: string
  readonly params: Readonly<Record<string, string>>
}

const isSpace = (c: string | undefined) => c === " " || c === "\t"
const isTokenChar = (c: string | undefined) =>
  c !== undefined && c !== "," && c !== "=" && c !== "\"" && !isSpace(c) && c !== "\r" && c !== "\n"

/**
 * Parses a `WWW-Authenticate` header (RFC 7235: challenges separated by commas, each a scheme followed by
 * `name=value` or `name="quoted value"` parameters). Never throws: whatever cannot be read is skipped.
 *
 * @since 0.1.0
 * @category challenges
 */
export const parseChallenges = (header: string): Array<Challenge> => {
  const challenges: Array<{ scheme: string; params: Record<string, string> }> = []
  let current: { scheme: string; params: Record<string, string> } | undefined
  let i = 0
  const n = header.length
  const readToken = () => {
    const start = i
    while (i < n && isTokenChar(header[i])) i++
    return header.slice(start, i)
  }
  /** Reads a quoted string starting at `i` (backslash escapes), returning its text. */
  const readQuoted = () => {
    i++
    let text = ""
    while (i < n && header[i] !== "\"") {
      if (header[i] === "\\" && i + 1 < n) i++
      text += header[i]
      i++
    }
    i++ // closing quote
    return text
  }
  const skipSpaces = () => {
    while (i < n && isSpace(header[i])) i++
  }
  while (i < n) {
    while (i < n && (isSpace(header[i]) || header[i] === "," || header[i] === "\r" || header[i] === "\n")) i++
    if (i >= n) break
    if (header[i] === "\"") {
      readQuoted() // a stray quoted string: skip it whole
      continue
    }
    const token = readToken()
    if (token === "") {
      i++ // a stray '=': skip it
      continue
    }
    skipSpaces()
    if (header[i] !== "=") {
      current = { scheme: token, params: {} }
      challenges.push(current)
      continue
    }
    // name = value (or a token68 ending in '=')
    let equals = 0
    while (header[i] === "=") {
      i++
      equals++
    }
    skipSpaces()
    if (equals > 1 || i >= n || header[i] === ",") continue // token68: nothing we use
    let value: string
    if (header[i] === "\"") {
      value = readQuoted()
    } else {
      value = readToken()
    }
    if (current !== undefined) {
      // defineProperty: a parameter named `__proto__` is data, not a prototype
      Object.defineProperty(current.params, token.toLowerCase(), {
        value,
        enumerable: true,
        writable: true,
        configurable: true
      })
    }
  }
  return challenges
}

/**
 * Decodes the `claims` of a CAE challenge: base64 (standard or URL alphabet, padding optional) of a JSON object.
 *
 * @since 0.1.0
 * @category challenges
 */
export const decodeClaims = (encoded: string): Option.Option<string> => {
  const normalized = encoded.trim().replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "")
  if (normalized === "" || !/^[A-Za-z0-9+/]+$/.test(normalized) || normalized.length % 4 === 1) return Option.none()
  const padded = normalized + "=".repeat((4 - (normalized.length % 4)) % 4)
  const decoded = Encoding.decodeBase64String(padded)
  if (Either.isLeft(decoded)) return Option.none()
  try {
    const parsed: unknown = JSON.parse(decoded.right)
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? Option.some(decoded.right)
      : Option.none()
  } catch {
    return Option.none()
  }
}

const genericTenants = new Set(["common", "organizations", "consumers"])

/**
 * The tenant named by an authorization URI such as `https://login.microsoftonline.com/{tenant}/oauth2/authorize`
 * or `https://login.windows.net/{tenant}` (not `common`, `organizations` or `consumers`).
 *
 * @since 0.1.0
 * @category challenges
 */
export const tenantFromAuthorizationUri = (uri: string): Option.Option<string> => {
  try {
    const segment = new URL(uri).pathname.split("/").find((s) => s !== "")
    if (segment === undefined || genericTenants.has(segment.toLowerCase())) return Option.none()
    return Either.isRight(AuthorityHost.validateTenantId(segment)) ? Option.some(segment) : Option.none()
  } catch {
    return Option.none()
  }
}

/**
 * What to do about a 401: get a token with these claims / for this tenant and retry once, or nothing.
 *
 * @since 0.1.0
 * @category challenges
 */
export type ChallengeAction =
  | { readonly _tag: "Claims"; readonly claims: string }
  | { readonly _tag: "Tenant"; readonly tenantId: string }

/**
 * Reads the `WWW-Authenticate` header of a 401 answered to a request made for `currentTenant`: a CAE claims
 * challenge first, then a tenant challenge naming another tenant.
 *
 * @since 0.1.0
 * @category challenges
 */
export const challengeAction = (
  header: string,
  currentTenant: string | undefined
): Option.Option<ChallengeAction> => {
  const bearer = parseChallenges(header).filter((c) => c.scheme.toLowerCase() === "bearer")
  for (const challenge of bearer) {
    const claims = challenge.params.claims
    if (challenge.params.error === "insufficient_claims" && claims !== undefined) {
      const decoded = decodeClaims(claims)
      if (Option.isSome(decoded)) return Option.some({ _tag: "Claims", claims: decoded.value })
    }
  }
  for (const challenge of bearer) {
    const uri = challenge.params.authorization_uri ?? challenge.params.authorization
    if (uri === undefined) continue
    const tenant = tenantFromAuthorizationUri(uri)
    if (Option.isSome(tenant) && tenant.value.toLowerCase() !== currentTenant?.toLowerCase()) {
      return Option.some({ _tag: "Tenant", tenantId: tenant.value })
    }
  }
  return Option.none()
}

// -----------------------------------------------------------------------------
// Middleware
// -----------------------------------------------------------------------------

interface Attempt {
  readonly tenantId: string | undefined
  readonly claims: string | undefined
}

const withAuthorizationRedacted = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.locallyWith(
    effect,
    Headers.currentRedactedNames,
    (names) =>
      names.some((n) => typeof n === "string" && n.toLowerCase() === "authorization")
        ? names
        : [...names, "authorization"]
  )

/**
 * A platform `RequestError` / `ResponseError` holds the request it failed on, and `JSON.stringify` of a request
 * shows its headers: put back the request as the caller made it, without the `Authorization` header.
 */
const scrub = <E>(error: E, original: HttpClientRequest.HttpClientRequest): E => {
  if (error instanceof HttpClientError.RequestError && error.request !== original) {
    return new HttpClientError.RequestError({
      request: original,
      reason: error.reason,
      cause: error.cause,
      ...(error.description === undefined ? {} : { description: error.description })
    }) as E
  }
  if (error instanceof HttpClientError.ResponseError && error.request !== original) {
    return new HttpClientError.ResponseError({
      request: original,
      response: error.response,
      reason: error.reason,
      cause: error.cause,
      ...(error.description === undefined ? {} : { description: error.description })
    }) as E
  }
  return error
}

const build =
  <RC>(credential: Effect.Effect<TokenCredential.Service, never, RC>, options: Options) =>
  <E, R>(client: HttpClient.HttpClient.With<E, R>): HttpClient.HttpClient.With<E | BearerTokenError, R | RC> => {
    const enableCae = options.enableCae ?? true
    const initial: Attempt = { tenantId: options.tenantId, claims: undefined }
    // per middleware instance: which tenant / claims the request being sent asks for
    const attemptRef = FiberRef.unsafeMake<Attempt>(initial)

    const authorize = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.gen(function*() {
        let protocol: string | undefined
        try {
          protocol = new URL(request.url).protocol
        } catch {
          protocol = undefined
        }
        if (protocol !== "https:") {
          return yield* Effect.fail(new InsecureUrlError({ method: request.method, url: safeUrl(request.url) }))
        }
        const attempt = yield* FiberRef.get(attemptRef)
        const service = yield* credential
        const token = yield* service.getToken(options.scopes, {
          ...(attempt.tenantId === undefined ? {} : { tenantId: attempt.tenantId }),
          ...(attempt.claims === undefined ? {} : { claims: attempt.claims }),
          enableCae
        })
        const value = Redacted.value(token.token)
        if (!headerSafeToken.test(value)) {
          return yield* Effect.fail(
            new ClientAuthenticationError({
              credential: service.name,
              reason: `the access token it returned cannot be sent in an HTTP header (it is empty or holds a ` +
                `control character, a space or a non-ASCII character): the token source is broken or not Microsoft ` +
                `Entra ID; the request was not sent`
            })
          )
        }
        return HttpClientRequest.setHeader(request, "authorization", `Bearer ${value}`)
      })

    // the inner client's own request mapping (base URL, …) runs first, so the https check sees the final URL
    const authorized = client.pipe(HttpClient.mapRequestEffect(authorize))

    const send = (
      request: HttpClientRequest.HttpClientRequest
    ): Effect.Effect<HttpClientResponse.HttpClientResponse, E | BearerTokenError, R | RC> =>
      Effect.flatMap(authorized.execute(request), (response) => {
        if (response.status !== 401 || request.body._tag === "Stream") return Effect.succeed(response)
        const header = response.headers["www-authenticate"]
        if (header === undefined) return Effect.succeed(response)
        const action = challengeAction(header, initial.tenantId)
        if (Option.isNone(action)) return Effect.succeed(response)
        const next: Attempt = action.value._tag === "Claims"
          ? { tenantId: initial.tenantId, claims: action.value.claims }
          : { tenantId: action.value.tenantId, claims: undefined }
        return Effect.logDebug(
          action.value._tag === "Claims"
            ? "401 with a claims challenge: retrying once with a token carrying the claims"
            : `401 with a tenant challenge: retrying once with a token for tenant ${action.value.tenantId}`
        ).pipe(
          // read the small 401 body so its connection can be reused; never wait long for it
          Effect.zipRight(Effect.ignore(Effect.timeout(response.arrayBuffer, Duration.seconds(1)))),
          Effect.zipRight(Effect.locally(authorized.execute(request), attemptRef, next)),
          Effect.annotateLogs({ module: "BearerToken", url: safeUrl(request.url) })
        )
      }).pipe(
        Effect.mapError((error) => scrub(error, request)),
        withAuthorizationRedacted
      )

    return HttpClient.makeWith(
      (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) => Effect.flatMap(request, send),
      Effect.succeed
    )
  }

/**
 * The middleware with a given credential service: `client.pipe(BearerToken.withCredential(credential, options))`.
 *
 * @since 0.1.0
 * @category middleware
 */
export const withCredential = (
  credential: TokenCredential.Service,
  options: Options
): <E, R>(client: HttpClient.HttpClient.With<E, R>) => HttpClient.HttpClient.With<E | BearerTokenError, R> =>
  build(Effect.succeed(credential), options)

/**
 * The middleware with the `TokenCredential` of the context (required by every request):
 * `client.pipe(BearerToken.authenticate({ scopes }))`.
 *
 * @since 0.1.0
 * @category middleware
 */
export const authenticate = (
  options: Options
): <E, R>(
  client: HttpClient.HttpClient.With<E, R>
) => HttpClient.HttpClient.With<E | BearerTokenError, R | TokenCredential.TokenCredential> =>
  build(TokenCredential.TokenCredential, options)

/**
 * The `HttpClient` of the context, authenticated with the `TokenCredential` of the context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  HttpClient.HttpClient.With<HttpClientError.HttpClientError | BearerTokenError>,
  never,
  HttpClient.HttpClient | TokenCredential.TokenCredential
> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const credential = yield* TokenCredential.TokenCredential
    return withCredential(credential, options)(client)
  })

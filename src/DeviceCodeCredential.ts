/**
 * Signs a user in with the OAuth 2.0 device authorization grant: for machines without a browser (SSH sessions,
 * containers, IoT). The user opens a URL on another device and types a short code.
 *
 * - The first `getToken` POSTs `client_id` and `scope` (plus `openid profile offline_access`) to
 *   `{authorityHost}/{tenantId}/oauth2/v2.0/devicecode`, shows the user the message through the `prompt` callback
 *   (default: `Console.log` of the message), then polls the token endpoint every `interval` seconds (as the server
 *   says, never faster than once a second; 5 s when it does not) with
 *   `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
 * - `authorization_pending` keeps polling; `slow_down` adds 5 s to the interval; `authorization_declined` /
 *   `access_denied`, `expired_token` and `bad_verification_code` end it with `ClientAuthenticationError`. Polling
 *   stops when the code expires, and when every caller waiting for it has been interrupted. All waiting goes through
 *   `Clock`, so tests drive it with `TestClock`.
 * - Concurrent first callers share one device code. After sign-in, access tokens are cached per tenant, scopes and
 *   CAE flag, and the refresh token (kept as `Redacted`, rotated, dropped on `invalid_grant`) serves other scopes
 *   and refreshes; when no refresh token is left the user is prompted again.
 * - Defaults: tenant `organizations`, client id `04b07795-8ddb-461a-bbee-02f9e1bf7b46` (the developer sign-on app).
 *   Reads `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when those options are not given.
 * - In a chain: a declined or expired sign-in is `ClientAuthenticationError` (the chain stops). This credential
 *   waits for a human, so it does not belong in unattended chains.
 *
 * @example
 * ```ts
 * import { Console, Effect, Layer } from "effect"
 * import { DeviceCodeCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = DeviceCodeCredential.layer({
 *   tenantId: "contoso.onmicrosoft.com",
 *   clientId: "11111111-1111-1111-1111-111111111111",
 *   prompt: (info) => Console.error(info.message)
 * }).pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://graph.microsoft.com/User.Read").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as AuthenticationRecord from "./AuthenticationRecord.js"
import { ClientAuthenticationError } from "./IdentityError.js"
import { buildForm, interpret, maxEpochMillis } from "./internal/aad.js"
import {
  defaultRetryPolicy,
  describeBody,
  parseJson,
  randomUuid,
  resolvePolicy,
  sendWithRetry
} from "./internal/http.js"
import { lazy } from "./internal/lazy.js"
import { describeParseError } from "./internal/safeParse.js"
import * as Scrub from "./internal/scrub.js"
import * as UserTokens from "./internal/userCredentials.js"
import type { RetryOptions } from "./RetryOptions.js"
import type * as TokenCredential from "./TokenCredential.js"
import type * as UserCredential from "./UserCredential.js"

/**
 * What the user must be told: open `verificationUri` and enter `userCode` before `expiresOn`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceCodeInfo {
  /** The short code the user types. Meant to be shown to the user; never logged by this library. */
  readonly userCode: string
  readonly verificationUri: string
  /** The server's ready-made instructions (or ours when it sends none). */
  readonly message: string
  readonly expiresOn: DateTime.Utc
}

/**
 * The options of `make`, `makeUser` and `layer`, all optional: by default the `organizations` tenant, the developer
 * sign-on app, and a prompt that logs the device code message to the console. Pass `authenticationRecord` and
 * `disableAutomaticAuthentication` to reuse an earlier sign-in silently.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Defaults to `organizations`. */
  readonly tenantId?: string | undefined
  /** Defaults to the developer sign-on app `04b07795-8ddb-461a-bbee-02f9e1bf7b46`. */
  readonly clientId?: string | undefined
  /** Shows the user what to do. Defaults to `Console.log(info.message)`. */
  readonly prompt?: ((info: DeviceCodeInfo) => Effect.Effect<void>) | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how each HTTP request is retried (not the polling). */
  readonly retryPolicy?: RetryOptions | undefined
  /**
   * The account of an earlier sign-in (from `authenticate()`, or written by `@azure/identity` / `azure-identity`):
   * with a persistent `TokenCache`, its refresh token is found there after a restart, so no sign-in is needed.
   * Its `tenantId` and `clientId` are used when those options are not given.
   */
  readonly authenticationRecord?: AuthenticationRecord.AuthenticationRecord | undefined
  /**
   * Never sign the user in from `getToken`: when no token can be had silently, fail with
   * `AuthenticationRequiredError` (call `authenticate()` for an explicit sign-in).
   */
  readonly disableAutomaticAuthentication?: boolean | undefined
}

/**
 * The credential's name, `"DeviceCodeCredential"`: the `name` of its service and the `credential` of its errors (and of
 * the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "DeviceCodeCredential"

/**
 * The developer sign-on app id, used when no `clientId` is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const developerSignOnClientId = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

/**
 * The grant type the token endpoint is polled with.
 *
 * @since 0.1.0
 * @category constants
 */
export const grantType = "urn:ietf:params:oauth:grant-type:device_code"

/**
 * `{authorityHost}/{tenantId}/oauth2/v2.0/devicecode`.
 *
 * @since 0.1.0
 * @category endpoints
 */
export const deviceCodeEndpoint = (authorityHost: string, tenantId: string): string =>
  `${authorityHost}/${tenantId}/oauth2/v2.0/devicecode`

// built on first use (see internal/lazy.ts)
const decodeDeviceCodeBody = lazy(() => {
  const Seconds = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.finite(), Schema.positive())
  return Schema.decodeUnknownEither(Schema.Struct({
    device_code: Schema.String.pipe(Schema.minLength(1)),
    user_code: Schema.String.pipe(Schema.minLength(1)),
    verification_uri: Schema.optional(Schema.String),
    verification_url: Schema.optional(Schema.String),
    expires_in: Seconds,
    interval: Schema.optional(Seconds),
    message: Schema.optional(Schema.String)
  }))
})

/** The default prompt: the message on the console. */
const defaultPrompt = (info: DeviceCodeInfo): Effect.Effect<void> => Console.log(info.message)

/** The polling interval when the server sends none (RFC 8628, section 3.2). */
const defaultIntervalMillis = 5_000

/** The shortest polling interval: a server's smaller one (0.001 s would poll 1,000 times a second) is raised. */
const minIntervalMillis = 1_000

/** How much `slow_down` adds to the polling interval. */
const slowDownMillis = 5_000

const fail = (reason: string, extra: Partial<ClientAuthenticationError> = {}) =>
  Effect.fail(new ClientAuthenticationError({ ...extra, credential: name, reason }))

/**
 * Builds both faces of the credential: the `TokenCredential` and the `UserCredential` (`authenticate`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUser = (
  options: Options = {}
): Effect.Effect<UserCredential.Services, never, HttpClient.HttpClient | Scope.Scope> =>
  UserTokens.makeUser(name, {
    ...options,
    tenantId: options.tenantId ?? options.authenticationRecord?.tenantId ?? "organizations",
    clientId: options.clientId ?? options.authenticationRecord?.clientId ?? developerSignOnClientId
  }, (context) =>
    Effect.sync(() => {
      const { resolved } = context
      const prompt = options.prompt ?? defaultPrompt

      const requestDeviceCode = (request: UserTokens.GrantRequest) =>
        Effect.gen(function*() {
          const url = deviceCodeEndpoint(resolved.authorityHost, request.tenantId)
          const makeRequest = Effect.map(randomUuid, (requestId) =>
            HttpClientRequest.post(url).pipe(
              HttpClientRequest.setHeader("client-request-id", requestId),
              HttpClientRequest.bodyUrlParams(buildForm({
                client_id: resolved.clientId,
                scope: request.scopes.join(" "),
                claims: request.claims
              }))
            ))
          const outcome = yield* sendWithRetry(
            resolved.client,
            makeRequest,
            resolvePolicy(resolved.retryPolicy, defaultRetryPolicy)
          )
          const response = Either.isRight(outcome.result) ? outcome.result.right : undefined
          if (response === undefined || response.status < 200 || response.status >= 300) {
            // transport failures and OAuth error bodies: the token client's interpretation fits
            const interpreted = interpret(name, outcome)
            return yield* Either.isLeft(interpreted)
              ? Effect.fail(interpreted.left)
              : fail(`the device code endpoint ${outcome.url} answered HTTP ${response?.status}`)
          }
          const json = parseJson(response.text)
          if (Option.isNone(json)) {
            return yield* fail(
              `the device code endpoint ${outcome.url} answered HTTP ${response.status} with ${
                describeBody(Scrub.scrubResponse(response, (text) => text))
              }: check that the authority host points at Microsoft Entra ID`,
              { status: response.status }
            )
          }
          const decoded = decodeDeviceCodeBody()(json.value)
          if (Either.isLeft(decoded)) {
            return yield* fail(
              `the device code endpoint ${outcome.url} answered HTTP ${response.status} without a usable device ` +
                `code (${
                  describeParseError(decoded.left)
                }): check that the authority host points at Microsoft Entra ID`,
              { status: response.status }
            )
          }
          const body = decoded.right
          const expiresAtMillis = outcome.sentAtMillis + Math.round(body.expires_in * 1000)
          if (!(expiresAtMillis <= maxEpochMillis)) {
            return yield* fail(
              `the device code endpoint ${outcome.url} answered with an expires_in beyond any representable date: ` +
                "check that the authority host points at Microsoft Entra ID",
              { status: response.status }
            )
          }
          const verificationUri = body.verification_uri ?? body.verification_url ?? ""
          return {
            deviceCode: Redacted.make(body.device_code),
            intervalMillis: body.interval === undefined
              ? defaultIntervalMillis
              : Math.max(minIntervalMillis, Math.round(body.interval * 1000)),
            expiresAtMillis,
            info: {
              userCode: body.user_code,
              verificationUri,
              message: body.message ??
                `To sign in, use a web browser to open the page ${verificationUri} and enter the code ` +
                  `${body.user_code} to authenticate.`,
              expiresOn: DateTime.unsafeMake(expiresAtMillis)
            } satisfies DeviceCodeInfo
          }
        })

      const poll = (
        request: UserTokens.GrantRequest,
        deviceCode: Redacted.Redacted<string>,
        startIntervalMillis: number,
        expiresAtMillis: number
      ) =>
        Effect.gen(function*() {
          let interval = startIntervalMillis
          while (true) {
            const now = yield* Clock.currentTimeMillis
            const wait = Math.min(interval, expiresAtMillis - now)
            if (wait <= 0) break
            yield* Effect.sleep(Duration.millis(wait))
            if ((yield* Clock.currentTimeMillis) >= expiresAtMillis) break
            const result = yield* Effect.either(
              context.request(request, { grant_type: grantType, device_code: deviceCode })
            )
            if (Either.isRight(result)) return result.right
            const error = result.left
            if (error._tag !== "ClientAuthenticationError") return yield* Effect.fail(error)
            switch (error.error) {
              case "authorization_pending":
                continue
              case "slow_down":
                interval += slowDownMillis
                continue
              case "authorization_declined":
              case "access_denied":
                return yield* fail(
                  `the user declined the sign-in (${error.error}): sign in again and accept the request`,
                  { error: error.error, ...(error.status !== undefined ? { status: error.status } : {}) }
                )
              case "expired_token":
                return yield* fail(
                  "the device code expired before the user signed in: call getToken again for a new code",
                  { error: error.error, ...(error.status !== undefined ? { status: error.status } : {}) }
                )
              case "bad_verification_code":
                return yield* fail(
                  "the authority did not recognise the device code (bad_verification_code): call getToken again " +
                    "for a new code",
                  { error: error.error, ...(error.status !== undefined ? { status: error.status } : {}) }
                )
              default:
                return yield* Effect.fail(error)
            }
          }
          return yield* fail("the device code expired before the user signed in: call getToken again for a new code")
        })

      return {
        reusable: true,
        cancelWhenAbandoned: true,
        exhausted: "the device code sign-in did not complete",
        run: (request) =>
          Effect.gen(function*() {
            const flow = yield* requestDeviceCode(request)
            yield* prompt(flow.info)
            return yield* poll(request, flow.deviceCode, flow.intervalMillis, flow.expiresAtMillis)
          })
      } satisfies UserTokens.InitialGrant
    }))

/**
 * Builds the credential's `TokenCredential` service alone (see `makeUser` for the `UserCredential` face too), in the
 * current scope, which its token cache lives in. Needs `HttpClient`; it never fails: a problem with the options
 * surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.map(makeUser(options), (services) => services.credential)

/**
 * Provides `TokenCredential` and `UserCredential` (for `authenticate`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TokenCredential.TokenCredential | UserCredential.UserCredential, never, HttpClient.HttpClient> =>
  UserTokens.layer(makeUser(options))

/**
 * Authenticates as the app behind an Azure Pipelines service connection that uses workload identity federation.
 *
 * For every network token request (never on a cache hit) it asks Azure DevOps for a fresh OIDC token:
 * `POST {SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=<id>` with `Authorization: Bearer <system
 * access token>` (the job's `System.AccessToken`), and sends the answer's `oidcToken` to Entra as the client
 * assertion of a client credentials grant (as `ClientAssertionCredential` does). The app registration needs a
 * federated credential for the service connection (issuer `https://vstoken.dev.azure.com/<organization id>`,
 * subject `sc://<organization>/<project>/<service connection>`), which Azure DevOps creates for you.
 *
 * - `SYSTEM_OIDCREQUESTURI` is set by Azure Pipelines in every job; the `oidcRequestUri` option overrides it. It
 *   must be `https:` (`http:` only on a loopback host, for tests).
 * - The system access token is not in the environment of a script step unless you map it:
 *   `env: { SYSTEM_ACCESSTOKEN: $(System.AccessToken) }` in YAML. It is kept `Redacted` and sent only to the OIDC
 *   request URI.
 * - `layerConfig()` reads `AZURESUBSCRIPTION_TENANT_ID`, `AZURESUBSCRIPTION_CLIENT_ID`,
 *   `AZURESUBSCRIPTION_SERVICE_CONNECTION_ID` (what the `AzureCLI@2` and `AzurePowerShell@5` tasks set) and
 *   `SYSTEM_ACCESSTOKEN`; every layer reads `AZURE_AUTHORITY_HOST`, `AZURE_ADDITIONALLY_ALLOWED_TENANTS` and
 *   `AZURE_REGIONAL_AUTHORITY_NAME` when the options are not given.
 * - In a chain: missing settings (not in a pipeline) and an unreachable OIDC endpoint are
 *   `CredentialUnavailableError`; an OIDC answer that is not a token (401, 403, an HTML page, no `oidcToken`) and an
 *   assertion Entra rejects are `ClientAuthenticationError` with what to fix.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { AzurePipelinesCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = AzurePipelinesCredential.layer({
 *   tenantId: "00000000-0000-0000-0000-000000000000",
 *   clientId: "11111111-1111-1111-1111-111111111111",
 *   serviceConnectionId: "22222222-2222-2222-2222-222222222222",
 *   systemAccessToken: Redacted.make(process.env.SYSTEM_ACCESSTOKEN ?? "")
 * }).pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://management.azure.com/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as AuthorityHost from "./AuthorityHost.js"
import { ClientAuthenticationError, CredentialUnavailableError } from "./IdentityError.js"
import { assertionFields } from "./internal/clientAssertion.js"
import * as Confidential from "./internal/confidentialClient.js"
import { sanitize } from "./internal/developerToolFront.js"
import * as Scrub from "./internal/scrub.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The credential's name, `"AzurePipelinesCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "AzurePipelinesCredential"

/**
 * The options of `make` and `layer`: the service connection's `tenantId`, `clientId` and `serviceConnectionId`, and the
 * job's `systemAccessToken` (`$(System.AccessToken)`) are required; the OIDC request URI defaults to
 * `SYSTEM_OIDCREQUESTURI`. `layerConfig` reads them all from the pipeline's variables.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tenantId: string
  /** The client id of the app registration (or user-assigned managed identity) of the service connection. */
  readonly clientId: string
  /** The service connection's id: the `resourceId` in the address of its page in Azure DevOps. */
  readonly serviceConnectionId: string
  /** The job's `System.AccessToken`. */
  readonly systemAccessToken: Redacted.Redacted<string>
  /** Defaults to `SYSTEM_OIDCREQUESTURI`. */
  readonly oidcRequestUri?: string | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
  /** How long one OIDC request may take, retries included. Default 30 seconds. */
  readonly oidcRequestTimeout?: Duration.DurationInput | undefined
  /**
   * Send token requests to a regional endpoint (ESTS-R): a region name such as `westus`, or `tryAutoDetect` to read
   * it from `REGION_NAME` / IMDS. Defaults to `AZURE_REGIONAL_AUTHORITY_NAME`, else `MSAL_FORCE_REGION`; unset: the
   * global endpoint.
   */
  readonly regionalAuthority?: string | undefined
  /** Where and how long `tryAutoDetect` asks IMDS (default `AZURE_POD_IDENTITY_AUTHORITY_HOST` / 169.254.169.254, 2 s). */
  readonly regionDetection?: {
    readonly imdsEndpoint?: string | undefined
    readonly timeout?: Duration.DurationInput | undefined
  } | undefined
}

/**
 * The `api-version` of the OIDC token request.
 *
 * @since 0.1.0
 * @category constants
 */
export const apiVersion = "7.1"

/**
 * The URL of the OIDC token request: the base from `SYSTEM_OIDCREQUESTURI`, `api-version` and
 * `serviceConnectionId` in the query (encoded). Fails with a description when the base is not a usable URL.
 *
 * @since 0.1.0
 * @category requests
 */
export const oidcRequestUrl = (base: string, serviceConnectionId: string): Either.Either<string, string> => {
  let url: URL
  try {
    url = new URL(base.trim())
  } catch {
    return Either.left(
      "SYSTEM_OIDCREQUESTURI is not a valid URL: it is set by Azure Pipelines in every job; do not set it yourself"
    )
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && AuthorityHost.isLoopbackHost(url.hostname))) {
    return Either.left(
      `SYSTEM_OIDCREQUESTURI must use https: (got ${url.protocol}); the system access token is sent only over https`
    )
  }
  if (url.username !== "" || url.password !== "") {
    return Either.left("SYSTEM_OIDCREQUESTURI must not contain credentials")
  }
  url.pathname = url.pathname.replace(/\/+$/, "")
  url.hash = ""
  url.searchParams.set("api-version", apiVersion)
  url.searchParams.set("serviceConnectionId", serviceConnectionId)
  return Either.right(url.href)
}

/** The response headers Azure DevOps adds that identify a request for its support, never secrets. */
const supportHeaders = ["x-vss-e2eid", "x-tfs-session", "activityid", "x-msedge-ref"]

const describeAnswer = (response: HttpClientResponse.HttpClientResponse, text: string): string => {
  const ids = supportHeaders.flatMap((h) => {
    const v = response.headers[h]
    return v === undefined || v === "" ? [] : [`${h}: ${sanitize(v, 80)}`]
  })
  let said = ""
  try {
    const body = JSON.parse(text) as unknown
    if (typeof body === "object" && body !== null && typeof (body as { message?: unknown }).message === "string") {
      said = sanitize((body as { message: string }).message, 300)
    }
  } catch {
    // not JSON
  }
  return [said === "" ? "" : `Azure DevOps said: ${said}`, ids.length === 0 ? "" : `(${ids.join(", ")})`]
    .filter((s) => s !== "").join(" ")
}

const isHtml = (response: HttpClientResponse.HttpClientResponse, text: string): boolean =>
  (response.headers["content-type"] ?? "").toLowerCase().includes("text/html") || /^\s*<(!doctype|html)/i.test(text)

/**
 * Turns the answer of the OIDC request into the OIDC token, or the error that says what to fix.
 *
 * @since 0.1.0
 * @category parsing
 */
export const interpretOidcAnswer = (
  response: HttpClientResponse.HttpClientResponse,
  text: string,
  serviceConnectionId: string
): Either.Either<Redacted.Redacted<string>, ClientAuthenticationError> => {
  const status = response.status
  const fail = (reason: string) => {
    const more = describeAnswer(response, text)
    return Either.left(
      new ClientAuthenticationError({
        credential: name,
        status,
        reason: `the OIDC token request answered HTTP ${status}: ${reason}${more === "" ? "" : ` ${more}`}`
      })
    )
  }
  if (status === 401) {
    return fail(
      "the system access token is missing, expired or not the job's System.AccessToken. Map it into the step " +
        "(YAML `env: { SYSTEM_ACCESSTOKEN: $(System.AccessToken) }`) and pass it as systemAccessToken"
    )
  }
  if (status === 403) {
    return fail(
      `the pipeline has no permission to use the service connection ${serviceConnectionId}: grant it in Project ` +
        "settings → Service connections → the connection → Security (Pipeline permissions), or run the pipeline " +
        "once and approve the permission request"
    )
  }
  if (status === 404) {
    return fail(
      `no service connection ${serviceConnectionId} was found: check serviceConnectionId (the resourceId of the ` +
        "connection's page) and that it belongs to this project"
    )
  }
  if (isHtml(response, text)) {
    return fail(
      "the answer is an HTML page (a sign-in page?), not JSON: check that SYSTEM_OIDCREQUESTURI is the one Azure " +
        "Pipelines sets for the job and that the system access token is passed"
    )
  }
  if (status < 200 || status >= 300) return fail("Azure DevOps refused the request")
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return fail(
      "the answer is not JSON: check that SYSTEM_OIDCREQUESTURI is the one Azure Pipelines sets for the job"
    )
  }
  const token = typeof body === "object" && body !== null ? (body as { oidcToken?: unknown }).oidcToken : undefined
  if (typeof token !== "string" || token.trim() === "") {
    return fail(
      "the answer has no oidcToken: check that the service connection uses workload identity federation"
    )
  }
  return Either.right(Redacted.make(token.trim()))
}

const missing = (what: string, variable: string) =>
  `${what} was not given: set the option, or ${variable} (outside Azure Pipelines this credential cannot work)`

/**
 * Builds the credential's `TokenCredential` service in the current scope, which its token cache lives in: for composing
 * services by hand (most programs use `layer`). Needs `HttpClient`; it never fails: a problem with the options surfaces
 * from `getToken`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const base = options.oidcRequestUri ?? Option.getOrUndefined(
      yield* Config.option(Config.string("SYSTEM_OIDCREQUESTURI")).pipe(
        Effect.orElseSucceed(() => Option.none<string>())
      )
    )
    if (base === undefined || base.trim() === "") {
      return Confidential.unavailable(
        name,
        "SYSTEM_OIDCREQUESTURI is not set: this credential works only in an Azure Pipelines job (it is set there " +
          "for every job), or give the oidcRequestUri option"
      )
    }
    const serviceConnectionId = options.serviceConnectionId?.trim() ?? ""
    if (serviceConnectionId === "") {
      return Confidential.unavailable(
        name,
        missing("the service connection id", "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID")
      )
    }
    if (options.systemAccessToken === undefined || Redacted.value(options.systemAccessToken).trim() === "") {
      return Confidential.unavailable(
        name,
        missing("the system access token", "SYSTEM_ACCESSTOKEN (map $(System.AccessToken) into the step's env)")
      )
    }
    const url = oidcRequestUrl(base, serviceConnectionId)
    if (Either.isLeft(url)) return Confidential.unavailable(name, url.left)
    const timeout = Duration.decode(options.oidcRequestTimeout ?? Duration.seconds(30))
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.withTracerPropagation(false),
      HttpClient.retryTransient({
        mode: "both",
        schedule: Schedule.exponential("500 millis").pipe(Schedule.jittered),
        times: 3
      })
    )
    const request = HttpClientRequest.post(url.right).pipe(
      HttpClientRequest.setHeaders({
        "content-type": "application/json",
        accept: "application/json",
        "x-tfs-fedauthredirect": "Suppress",
        authorization: `Bearer ${Redacted.value(options.systemAccessToken)}`
      })
    )
    const where = `${new URL(url.right).origin}${new URL(url.right).pathname}`
    const oidcToken = client.execute(request).pipe(
      Effect.flatMap((response) =>
        Effect.flatMap(response.text, (text) => interpretOidcAnswer(response, text, serviceConnectionId))
      ),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new CredentialUnavailableError({
            credential: name,
            reason: `the OIDC token request to ${where} did not answer within ${Duration.format(timeout)}`
          })
      }),
      Effect.catchTags({
        RequestError: (error) =>
          Effect.fail(
            new CredentialUnavailableError({
              credential: name,
              reason: `the OIDC token request to ${where} failed (${error.reason}): check network access to ` +
                "Azure DevOps"
            })
          ),
        ResponseError: (error) =>
          Effect.fail(
            new CredentialUnavailableError({
              credential: name,
              reason: `the answer of the OIDC token request to ${where} could not be read (${error.reason})`
            })
          )
      }),
      // every header value redacted in the client's spans: the answer can echo the system access token anywhere
      Scrub.withAllHeadersRedacted,
      Effect.withSpan("AzurePipelinesCredential.oidcToken", {
        attributes: { "azure.identity.credential": name, "azure.identity.service_connection_id": serviceConnectionId }
      })
    )
    return yield* Confidential.makeClientCredentials(
      name,
      options,
      () => Effect.map(oidcToken, assertionFields)
    )
  })

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided). Needs `HttpClient` (`effect-azure-identity/node`'s `layer` provides it); it never fails to build: a
 * problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

/**
 * Reads the options from `Config`; by default `AZURESUBSCRIPTION_TENANT_ID`, `AZURESUBSCRIPTION_CLIENT_ID`,
 * `AZURESUBSCRIPTION_SERVICE_CONNECTION_ID` and `SYSTEM_ACCESSTOKEN` (and `SYSTEM_OIDCREQUESTURI` in `make`).
 * Missing configuration does not fail the layer: `getToken` fails with `CredentialUnavailableError` naming it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = {
    tenantId: Config.string("AZURESUBSCRIPTION_TENANT_ID"),
    clientId: Config.string("AZURESUBSCRIPTION_CLIENT_ID"),
    serviceConnectionId: Config.string("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
    systemAccessToken: Config.redacted("SYSTEM_ACCESSTOKEN")
  }
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient> =>
  Confidential.layerFromConfig(name, Config.unwrap(config), make)

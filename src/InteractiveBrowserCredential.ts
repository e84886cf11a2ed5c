/**
 * Signs a user in through the system browser: the OAuth 2.0 authorization code flow with PKCE (S256) and `state`,
 * the code delivered to a loopback listener on `http://localhost:{port}`. For desktop tools and local scripts.
 *
 * - The first `getToken` (or `authenticate`) listens on `127.0.0.1` (a free port, or the one `redirectUri` names),
 *   opens `{authorityHost}/{tenant}/oauth2/v2.0/authorize?…` with the `BrowserOpener` (default: the system browser
 *   via `xdg-open` / `open` / `cmd /c start`, argv only), and waits for the browser to come back to the redirect
 *   URI, at most `timeout` (default 5 minutes, on the `Clock`). Only `GET {path}` with the `state` it sent is
 *   taken; a wrong `state` is answered 400 and ignored; other paths are 404. The browser gets a small "you can close
 *   this window" page (or an error page), then the listener is closed and the code is redeemed with its
 *   `code_verifier`.
 * - `error=access_denied` (the user declined) and other errors from the authorize endpoint, and the timeout (the
 *   window was closed), are `ClientAuthenticationError` saying what happened; a port that cannot be listened on or a
 *   browser that cannot be opened is `CredentialUnavailableError`.
 * - After sign-in, as every user credential: access tokens cached per tenant, scopes and CAE flag; the refresh token
 *   serves other scopes and refreshes. With a `TokenCache` in the context the refresh token is also kept there
 *   (encrypted), per account; with `authenticationRecord` a restarted program gets tokens silently.
 *   `disableAutomaticAuthentication` makes `getToken` fail with `AuthenticationRequiredError` instead of opening the
 *   browser; `UserCredential.authenticate` signs in explicitly and returns the record.
 * - Defaults: tenant `organizations`, client id `04b07795-8ddb-461a-bbee-02f9e1bf7b46` (the developer sign-on app),
 *   `prompt=select_account`. Reads `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when those options
 *   are not given.
 * - Node: the listener is the `LoopbackServer` service, provided by `effect-azure-identity/node`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { InteractiveBrowserCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = InteractiveBrowserCredential.layer({
 *   tenantId: "contoso.onmicrosoft.com",
 *   loginHint: "ada@contoso.com"
 * }).pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://graph.microsoft.com/User.Read").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as AuthenticationRecord from "./AuthenticationRecord.js"
import { ClientAuthenticationError, CredentialUnavailableError } from "./IdentityError.js"
import type * as Flow from "./internal/browserFlow.js"
import * as Confidential from "./internal/confidentialClient.js"
import { lazyModule } from "./internal/lazy.js"
import * as UserTokens from "./internal/userCredentials.js"
import { LoopbackServer } from "./LoopbackServer.js"
import type { RetryOptions } from "./RetryOptions.js"
import { Platform } from "./SharedTokenCacheCredential.js"
import type * as TokenCredential from "./TokenCredential.js"
import type * as UserCredential from "./UserCredential.js"

// PKCE, the redirect listener and the browser launcher: loaded when the browser is opened or a sign-in runs (not at
// import: docs/performance.md, "Import cost")
const browserFlow = lazyModule(() => import("./internal/browserFlow.js"))

/**
 * The credential's name, `"InteractiveBrowserCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "InteractiveBrowserCredential"

/**
 * The developer sign-on app id, used when no `clientId` is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const developerSignOnClientId = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

/**
 * How long the credential waits for the browser by default (5 minutes).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTimeout: Duration.Duration = Duration.minutes(5)

/**
 * The `prompt` values of the authorize endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export type Prompt = "select_account" | "login" | "consent" | "none"

/**
 * The options of `make`, `makeUser` and `layer`, all optional: by default the record's tenant and app, else the
 * `organizations` tenant and the developer sign-on app, a redirect to `http://localhost` on a free port, and the system
 * browser. Pass `authenticationRecord` and `disableAutomaticAuthentication` to reuse an earlier sign-in silently.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Defaults to the record's tenant, else `organizations`. */
  readonly tenantId?: string | undefined
  /** Defaults to the record's client id, else the developer sign-on app `04b07795-8ddb-461a-bbee-02f9e1bf7b46`. */
  readonly clientId?: string | undefined
  /**
   * `http://localhost[:port][/path]` (or `127.0.0.1`): the redirect URI registered for the app. Without a port (or
   * without this option) a free port is used, which Entra accepts for loopback redirect URIs.
   */
  readonly redirectUri?: string | undefined
  /** Pre-fills the sign-in page with this username (`login_hint`). Defaults to the record's username. */
  readonly loginHint?: string | undefined
  /** Skips home realm discovery for this domain (`domain_hint`), e.g. `contoso.com`. */
  readonly domainHint?: string | undefined
  /** Defaults to `select_account`. */
  readonly prompt?: Prompt | undefined
  /** How long to wait for the browser to come back (default 5 minutes). */
  readonly timeout?: Duration.DurationInput | undefined
  /** The text of the page the browser shows after a successful sign-in. */
  readonly successMessage?: string | undefined
  /** The start of the text of the page the browser shows after a failed sign-in. */
  readonly errorMessage?: string | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
  /**
   * The account of an earlier sign-in (from `authenticate()`, or written by `@azure/identity` / `azure-identity`):
   * with a persistent `TokenCache`, its refresh token is found there after a restart, so no browser is needed.
   */
  readonly authenticationRecord?: AuthenticationRecord.AuthenticationRecord | undefined
  /** Never open the browser from `getToken`: fail with `AuthenticationRequiredError` instead. */
  readonly disableAutomaticAuthentication?: boolean | undefined
}

/**
 * Why the browser could not be opened.
 *
 * @since 0.1.0
 * @category errors
 */
export class BrowserOpenError extends Schema.TaggedError<BrowserOpenError>(
  "effect-azure-identity/BrowserOpenError"
)("BrowserOpenError", { reason: Schema.String }) {
  override get message(): string {
    return `the browser could not be opened: ${this.reason}`
  }
}

/**
 * What a {@link BrowserOpener} does: show the user the sign-in page at a URL, or fail with `BrowserOpenError` (the
 * credential then fails with `CredentialUnavailableError`).
 *
 * @since 0.1.0
 * @category models
 */
export interface BrowserOpenerService {
  /** Shows the sign-in page at `url` to the user. */
  readonly open: (url: string) => Effect.Effect<void, BrowserOpenError>
}

/**
 * Opens the sign-in URL. Without one in the context, the credential opens the system browser (`xdg-open` on
 * Linux, `open` on macOS, `cmd /c start "" <url>` on Windows) with the `CommandExecutor`. Provide one to print the
 * URL instead, or to drive a browser in tests.
 *
 * @since 0.1.0
 * @category tags
 */
export class BrowserOpener extends Context.Tag("effect-azure-identity/InteractiveBrowserCredential/BrowserOpener")<
  BrowserOpener,
  BrowserOpenerService
>() {}

/**
 * The system browser, through the `CommandExecutor`: the launcher `open` (macOS), `cmd /c start` (Windows) or
 * `xdg-open` (elsewhere) is run with the URL as one argument, never through a shell.
 *
 * @since 0.1.0
 * @category constructors
 */
export const systemBrowserOpener: Effect.Effect<BrowserOpenerService, never, CommandExecutor.CommandExecutor> = Effect
  .gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    const platform = yield* Platform
    return {
      open: (url) =>
        Effect.flatMap(browserFlow, (flow) => flow.runLauncher(executor, flow.openCommand(platform, url))).pipe(
          Effect.mapError((reason) => new BrowserOpenError({ reason }))
        )
    }
  })

/**
 * Provides {@link BrowserOpener} as the system browser ({@link systemBrowserOpener}); needs a `CommandExecutor`. The
 * credential uses the system browser already when no `BrowserOpener` is given: provide this to make that explicit, or
 * another layer of the tag to print the URL or drive a browser in tests.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSystemBrowserOpener: Layer.Layer<BrowserOpener, never, CommandExecutor.CommandExecutor> = Layer
  .effect(BrowserOpener, systemBrowserOpener)

export {
  /**
   * Starts the redirect listener (declared in its own module so `effect-azure-identity/node` can provide it without
   * loading this credential).
   *
   * @since 0.1.0
   * @category tags
   */
  LoopbackServer,
  /**
   * What `LoopbackServer` provides: `listen({ port })`, a scoped HTTP server on `127.0.0.1`.
   *
   * @since 0.1.0
   * @category models
   */
  type LoopbackServerService
} from "./LoopbackServer.js"

interface Redirect {
  /** The redirect URI before the port is known: `http://host` + `:port` (or the given port) + path. */
  readonly host: string
  readonly port: number | undefined
  readonly path: string
  /** The exact text given, used as is when it names a port. */
  readonly given: string | undefined
}

const parseRedirectUri = (uri: string | undefined): Either.Either<Redirect, string> => {
  if (uri === undefined) return Either.right({ host: "localhost", port: undefined, path: "/", given: undefined })
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return Either.left(`the redirect URI ${JSON.stringify(uri)} is not an absolute URL: use http://localhost:{port}`)
  }
  if (url.protocol !== "http:" || !["localhost", "127.0.0.1"].includes(url.hostname)) {
    return Either.left(
      `the redirect URI ${JSON.stringify(uri)} is not a loopback address: use http://localhost[:port][/path] (the ` +
        "browser comes back to a listener on this machine)"
    )
  }
  if (url.search !== "" || url.hash !== "") {
    return Either.left(`the redirect URI ${JSON.stringify(uri)} must not have a query or a fragment`)
  }
  return Either.right({
    host: url.hostname,
    port: url.port === "" ? undefined : Number(url.port),
    path: url.pathname === "" ? "/" : url.pathname,
    given: url.port === "" ? undefined : uri
  })
}

const unavailableError = (reason: string) => new CredentialUnavailableError({ credential: name, reason })

const describeDelivery = (error: string, description: string | undefined): string => {
  const detail = description !== undefined && description !== "" ? `: ${description}` : ""
  if (error === "access_denied") {
    return `the user declined the sign-in or closed the consent page (access_denied${detail}): sign in again and ` +
      "accept the request"
  }
  if (error === "login_required" || error === "interaction_required" || error === "consent_required") {
    return `the authorize endpoint needs the user to interact (${error}${detail}): use a prompt other than "none"`
  }
  return `the authorize endpoint answered ${error}${detail}`
}

/**
 * Builds both faces of the credential: the `TokenCredential` and the `UserCredential` (`authenticate`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUser = (
  options: Options = {}
): Effect.Effect<
  UserCredential.Services,
  never,
  HttpClient.HttpClient | CommandExecutor.CommandExecutor | LoopbackServer | Scope.Scope
> =>
  Effect.gen(function*() {
    const given = yield* Effect.serviceOption(BrowserOpener)
    const opener = Option.isSome(given) ? given.value : yield* systemBrowserOpener
    const server = yield* LoopbackServer
    const timeout = Duration.decode(options.timeout ?? defaultTimeout)
    return yield* UserTokens.makeUser(name, {
      ...options,
      tenantId: options.tenantId ?? options.authenticationRecord?.tenantId ?? "organizations",
      clientId: options.clientId ?? options.authenticationRecord?.clientId ?? developerSignOnClientId
    }, (context) =>
      Effect.suspend(() => {
        const redirectEither = parseRedirectUri(options.redirectUri)
        if (Either.isLeft(redirectEither)) return Confidential.invalid("redirectUri", redirectEither.left)
        const redirect = redirectEither.right
        if (!Duration.greaterThan(timeout, Duration.zero)) {
          return Confidential.invalid("timeout", "the timeout must be positive: pass a duration such as \"5 minutes\"")
        }
        const { resolved } = context

        const run = (request: UserTokens.GrantRequest) =>
          Effect.scoped(Effect.gen(function*() {
            const flow = yield* browserFlow
            const { challenge, verifier } = yield* flow.pkce
            const state = yield* flow.makeState
            const listening = yield* server.listen({ port: redirect.port ?? 0 }).pipe(
              Effect.mapError((error) =>
                unavailableError(
                  `could not listen on 127.0.0.1:${redirect.port ?? 0} for the browser's redirect (${
                    String((error.cause as { message?: unknown } | undefined)?.message ?? error.message)
                  }): ${
                    redirect.port === undefined
                      ? "check that loopback networking is allowed"
                      : "the port is probably in use: free it, pick another port in redirectUri, or leave the port " +
                        "out for a free one"
                  }`
                )
              )
            )
            const address = listening.address
            if (address._tag !== "TcpAddress") {
              return yield* Effect.fail(unavailableError("the loopback server is not listening on a TCP port"))
            }
            const redirectUri = redirect.given ??
              `http://${redirect.host}:${address.port}${redirect.path === "/" ? "" : redirect.path}`
            const deferred = yield* Deferred.make<Flow.Delivery>()
            let mismatches = 0
            yield* listening.serve(flow.listenerApp({
              path: redirect.path,
              state,
              deferred,
              successMessage: options.successMessage ?? "Signed in. You can close this window now.",
              errorMessage: options.errorMessage ?? "The sign-in failed.",
              onStateMismatch: () => {
                mismatches++
              }
            }))
            const url = flow.authorizeUrl({
              authorityHost: resolved.authorityHost,
              tenantId: request.tenantId,
              clientId: resolved.clientId,
              redirectUri,
              scopes: request.scopes,
              state,
              codeChallenge: challenge,
              prompt: options.prompt ?? "select_account",
              loginHint: options.loginHint ??
                (options.authenticationRecord?.username ? options.authenticationRecord.username : undefined),
              domainHint: options.domainHint,
              claims: request.claims
            })
            yield* opener.open(url).pipe(
              Effect.mapError((error) =>
                unavailableError(
                  `${error.message}: open the sign-in page yourself, or provide a BrowserOpener (e.g. one that ` +
                    "prints the URL); in a terminal without a browser use DeviceCodeCredential"
                )
              )
            )
            const delivery = yield* Deferred.await(deferred).pipe(
              Effect.timeoutFail({
                duration: timeout,
                onTimeout: () =>
                  new ClientAuthenticationError({
                    credential: name,
                    reason: `no sign-in response reached ${redirectUri} within ${
                      Duration.format(timeout)
                    }: the browser window was probably closed before the sign-in completed${
                      mismatches > 0 ? ` (${mismatches} response(s) with a wrong state were ignored)` : ""
                    }; call getToken or authenticate again to retry, or raise the timeout option`
                  })
              })
            )
            if (delivery._tag === "Error") {
              return yield* Effect.fail(
                new ClientAuthenticationError({
                  credential: name,
                  reason: describeDelivery(delivery.error, delivery.description),
                  error: delivery.error,
                  ...(delivery.description !== undefined ? { errorDescription: delivery.description } : {})
                })
              )
            }
            return yield* context.request(request, {
              grant_type: "authorization_code",
              code: Redacted.make(delivery.code),
              redirect_uri: redirectUri,
              code_verifier: verifier
            })
          }))

        return Effect.succeed<UserTokens.InitialGrant>({
          reusable: true,
          cancelWhenAbandoned: true,
          exhausted: "the browser sign-in did not complete",
          run
        })
      }))
  })

/**
 * Builds the credential's `TokenCredential` service alone (see `makeUser` for the `UserCredential` face too), in the
 * current scope, which its token cache lives in. Needs `HttpClient`, `CommandExecutor` and `LoopbackServer`; it never
 * fails: a problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  TokenCredential.Service,
  never,
  HttpClient.HttpClient | CommandExecutor.CommandExecutor | LoopbackServer | Scope.Scope
> => Effect.map(makeUser(options), (services) => services.credential)

/**
 * Provides `TokenCredential` and `UserCredential` (for `authenticate`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  TokenCredential.TokenCredential | UserCredential.UserCredential,
  never,
  HttpClient.HttpClient | CommandExecutor.CommandExecutor | LoopbackServer
> => UserTokens.layer(makeUser(options))

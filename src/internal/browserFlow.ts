/**
 * The authorization code flow with PKCE through the system browser and a loopback redirect listener: the PKCE pair
 * and `state`, the authorize URL, the listener's HTTP app and pages, and the default way to open a browser.
 *
 * @internal
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Random from "effect/Random"

/** What the browser brought back to the listener. @internal */
export type Delivery =
  | { readonly _tag: "Code"; readonly code: string }
  | {
    readonly _tag: "Error"
    readonly error: string
    readonly description: string | undefined
  }

/** `n` random bytes from `Random` (so tests can fix them). @internal */
export const randomBytes = (n: number): Effect.Effect<Uint8Array> =>
  Effect.map(
    Effect.all(Array.from({ length: n }, () => Random.nextIntBetween(0, 256))),
    (values) => Uint8Array.from(values)
  )

/** A PKCE verifier (32 random bytes, base64url: 43 characters) and its S256 challenge. @internal */
export const pkce: Effect.Effect<{ readonly verifier: string; readonly challenge: string }> = Effect.gen(function*() {
  const verifier = Encoding.encodeBase64Url(yield* randomBytes(32))
  const digest = yield* Effect.promise(() =>
    globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))
  )
  return { verifier, challenge: Encoding.encodeBase64Url(new Uint8Array(digest)) }
})

/** The `state` value: 16 random bytes, base64url. @internal */
export const makeState: Effect.Effect<string> = Effect.map(randomBytes(16), Encoding.encodeBase64Url)

/** @internal */
export interface AuthorizeParameters {
  readonly authorityHost: string
  readonly tenantId: string
  readonly clientId: string
  readonly redirectUri: string
  readonly scopes: ReadonlyArray<string>
  readonly state: string
  readonly codeChallenge: string
  readonly prompt: string | undefined
  readonly loginHint: string | undefined
  readonly domainHint: string | undefined
  readonly claims: string | undefined
}

/** `{authorityHost}/{tenant}/oauth2/v2.0/authorize?…` with the response in the query. @internal */
export const authorizeUrl = (p: AuthorizeParameters): string => {
  const url = new URL(`${p.authorityHost}/${encodeURIComponent(p.tenantId)}/oauth2/v2.0/authorize`)
  const q = url.searchParams
  q.set("client_id", p.clientId)
  q.set("response_type", "code")
  q.set("response_mode", "query")
  q.set("redirect_uri", p.redirectUri)
  q.set("scope", p.scopes.join(" "))
  q.set("state", p.state)
  q.set("code_challenge", p.codeChallenge)
  q.set("code_challenge_method", "S256")
  q.set("client_info", "1")
  if (p.prompt !== undefined) q.set("prompt", p.prompt)
  if (p.loginHint !== undefined) q.set("login_hint", p.loginHint)
  if (p.domainHint !== undefined) q.set("domain_hint", p.domainHint)
  if (p.claims !== undefined) q.set("claims", p.claims)
  return url.toString()
}

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&#39;"
  )

/** A small HTML page for the browser tab. @internal */
export const page = (title: string, message: string, status: number): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
      `<body style="font-family:sans-serif;margin:3em"><h1>${escapeHtml(title)}</h1><p>${
        escapeHtml(message)
      }</p></body></html>`,
    { status, contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store" } }
  )

/** @internal */
export interface ListenerOptions {
  /** The path the redirect URI names (`/` when it names none): the only one answered. */
  readonly path: string
  readonly state: string
  readonly deferred: Deferred.Deferred<Delivery>
  readonly successMessage: string
  readonly errorMessage: string
  /** Called for each response whose `state` is not the one sent (ignored, the flow keeps waiting). */
  readonly onStateMismatch: () => void
}

/**
 * The listener's HTTP app: `GET {path}?code=…&state=…` or `?error=…&state=…` completes the flow once; a wrong
 * `state` is answered 400 and ignored; other paths are 404, other methods 405.
 *
 * @internal
 */
export const listenerApp = (options: ListenerOptions) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    let url: URL
    try {
      url = new URL(request.url, "http://localhost")
    } catch {
      return page("Not found", "Nothing is served here.", 404)
    }
    if (url.pathname !== options.path) return page("Not found", "Nothing is served here.", 404)
    if (request.method !== "GET") {
      return HttpServerResponse.text("Method not allowed", { status: 405, headers: { allow: "GET" } })
    }
    const q = url.searchParams
    const code = q.get("code")
    const error = q.get("error")
    if ((code === null || code === "") && (error === null || error === "")) {
      return page("Waiting for the sign-in", "This address only receives the sign-in response.", 400)
    }
    if (q.getAll("state").length !== 1 || q.get("state") !== options.state) {
      options.onStateMismatch()
      return page(
        "Sign-in response ignored",
        "This response does not belong to the sign-in in progress (its state does not match), so it was ignored.",
        400
      )
    }
    if (yield* Deferred.isDone(options.deferred)) {
      return page("Sign-in already complete", "You can close this window.", 400)
    }
    if (error !== null && error !== "") {
      yield* Deferred.succeed(options.deferred, {
        _tag: "Error",
        error,
        description: q.get("error_description") ?? undefined
      })
      return page("Sign-in failed", `${options.errorMessage} ${error}: ${q.get("error_description") ?? ""}`, 200)
    }
    yield* Deferred.succeed(options.deferred, { _tag: "Code", code: code! })
    return page("Signed in", options.successMessage, 200)
  })

/** Escapes what `cmd.exe` would interpret in an argument of `start`. @internal */
export const escapeForCmd = (url: string): string => url.replace(/[\^&|<>()%!"]/g, (c) => `^${c}`)

/** The command that opens a URL in the system browser, as the `open` package picks it. @internal */
export const openCommand = (platform: string, url: string): ReadonlyArray<string> =>
  platform === "darwin"
    ? ["open", url]
    : platform === "win32"
    ? ["cmd", "/c", "start", "\"\"", escapeForCmd(url)]
    : ["xdg-open", url]

/** How long the opener waits for the launcher to exit before it takes silence as success. @internal */
export const launcherGrace = Duration.seconds(5)

/**
 * Runs the launcher (argv only, no shell): a non-zero exit or a spawn failure is an error; a launcher still running
 * after {@link launcherGrace} (some `xdg-open` set-ups wait for the browser) is left running and counts as success.
 *
 * @internal
 */
export const runLauncher = (
  executor: CommandExecutor.CommandExecutor,
  argv: ReadonlyArray<string>
): Effect.Effect<void, string> =>
  Effect.gen(function*() {
    const [program, ...args] = argv
    const command = Command.make(program!, ...args)
    const done = yield* Deferred.make<number, string>()
    yield* Effect.forkDaemon(
      executor.exitCode(command).pipe(
        Effect.mapError((error) =>
          error._tag === "SystemError" && error.reason === "NotFound"
            ? `${program} was not found`
            : `${program} could not be started (${error.message})`
        ),
        Effect.exit,
        Effect.flatMap((exit) => Deferred.done(done, exit))
      )
    )
    const result = yield* Deferred.await(done).pipe(Effect.either, Effect.timeoutOption(launcherGrace))
    if (result._tag === "None") return
    const outcome = result.value
    if (Either.isLeft(outcome)) return yield* Effect.fail(outcome.left)
    if (outcome.right !== 0) return yield* Effect.fail(`${program} exited with code ${outcome.right}`)
  })

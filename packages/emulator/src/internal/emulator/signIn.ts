/**
 * The emulator's sign-in page at `/{tenant}/oauth2/v2.0/authorize`, so a real browser can go through the
 * authorization code flow:
 *
 * - `GET` checks the tenant, `client_id` and `redirect_uri` (Entra-shaped JSON errors, as Entra shows an error page
 *   instead of redirecting), then shows an HTML form (username pre-filled from `login_hint`, password, "Sign in" and
 *   "Cancel") that carries every authorize parameter in hidden fields;
 * - `POST` (the form) checks the user's password: a wrong one shows the form again with an error; a right one
 *   redirects to `redirect_uri` with `code`, `state` and `client_info`; "Cancel" redirects with
 *   `error=access_denied` (AADSTS65004), as when a user declines;
 * - `prompt=none` shows no form: `login_hint` (else the first user) counts as already signed in; an unknown
 *   `login_hint` redirects with `error=login_required` (AADSTS50058);
 * - `response_mode=form_post` answers with a page that POSTs the result to `redirect_uri` (query otherwise).
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { checkAuthorizeRequest, redirectWithCode } from "./entra/authorizationCode.js"
import { entraResponse, field, present, readForm, readQuery, redirect, text } from "./http.js"
import type { ResolvedUser, State } from "./state.js"
import { findUser } from "./state.js"

/** The authorize parameters the form carries through the POST. */
const carried = [
  "client_id",
  "redirect_uri",
  "response_type",
  "response_mode",
  "scope",
  "state",
  "nonce",
  "code_challenge",
  "code_challenge_method",
  "prompt",
  "login_hint",
  "domain_hint",
  "claims",
  "client_info"
] as const

/** The authorize parameters, and the form's own fields when it is POSTed. */
const AuthorizeFields = Schema.Struct({
  ...(Object.fromEntries(carried.map((name) => [name, field])) as Record<(typeof carried)[number], typeof field>),
  username: field,
  password: field,
  action: field
})

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&#39;"
  )

const html = (status: number, body: string): HttpServerResponse.HttpServerResponse =>
  text(
    status,
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - identity emulator</title></head>` +
      `<body style="font-family:sans-serif;margin:3em">${body}</body></html>`,
    "text/html; charset=utf-8"
  )

/** The sign-in form; `error` is shown above it. @internal */
export const form = (
  path: string,
  q: (name: string) => string | undefined,
  appName: string,
  error: string | undefined
): HttpServerResponse.HttpServerResponse => {
  const hidden = carried.flatMap((name) => {
    const value = q(name)
    return value === undefined ? [] : [`<input type="hidden" name="${name}" value="${escapeHtml(value)}">`]
  })
  return html(
    200,
    `<h1>Sign in</h1><p>to continue to ${escapeHtml(appName)}</p>` +
      (error === undefined ? "" : `<p id="error" role="alert" style="color:#a00">${escapeHtml(error)}</p>`) +
      `<form method="post" action="${escapeHtml(path)}">${hidden.join("")}` +
      `<p><label>Username <input id="username" name="username" type="text" autocomplete="username" value="${
        escapeHtml(q("login_hint") ?? "")
      }"></label></p>` +
      `<p><label>Password <input id="password" name="password" type="password" autocomplete="current-password">` +
      `</label></p>` +
      `<p><button id="signin" type="submit" name="action" value="signin">Sign in</button> ` +
      `<button id="cancel" type="submit" name="action" value="cancel">Cancel</button></p></form>`
  )
}

/**
 * Sends the result (`target`: `redirect_uri` with the result in its query) to the app: as a redirect, or POSTed by an
 * auto-submitting page (`form_post`).
 */
const deliver = (
  q: (name: string) => string | undefined,
  target: string
): HttpServerResponse.HttpServerResponse => {
  if (q("response_mode") !== "form_post") return redirect(target)
  const location = new URL(target)
  const fields = [...location.searchParams].map(([name, value]) =>
    `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`
  )
  location.search = ""
  return html(
    200,
    `<form id="result" method="post" action="${escapeHtml(location.toString())}">${fields.join("")}` +
      `<noscript><button type="submit">Continue</button></noscript></form>` +
      `<script>document.getElementById("result").submit()</script>`
  )
}

const redirectError = (
  redirectUri: string,
  q: (name: string) => string | undefined,
  error: string,
  description: string
): HttpServerResponse.HttpServerResponse => {
  const target = new URL(redirectUri)
  target.searchParams.set("error", error)
  target.searchParams.set("error_description", description)
  const state = q("state")
  if (state !== undefined) target.searchParams.set("state", state)
  return deliver(q, target.toString())
}

const passwordMatches = (user: ResolvedUser, password: string | undefined): boolean =>
  user.password !== undefined && password !== undefined && user.password === password

/** `GET` / `POST /{tenant}/oauth2/v2.0/authorize`. @internal */
export const authorize = (state: State) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const post = request.method === "POST"
    const fields = post ? yield* readForm(AuthorizeFields) : yield* readQuery(AuthorizeFields)
    const values: Readonly<Record<string, string | undefined>> = fields
    const q = (name: string) => present(values[name])
    const checked = yield* checkAuthorizeRequest(state, (yield* HttpRouter.params).tenant, q)
    const appName = checked.app.displayName
    const path = new URL(request.url, "http://emulator.invalid").pathname
    if (!post) {
      if (request.method !== "GET") return text(405, "Method not allowed")
      if (q("prompt") === "none") {
        const user = findUser(state, q("login_hint"))
        return user === undefined
          ? redirectError(
            checked.redirectUri,
            q,
            "login_required",
            "AADSTS50058: A silent sign-in request was sent but no user is signed in."
          )
          : deliver(q, yield* redirectWithCode(state, checked, user, q))
      }
      return form(path, q, appName, undefined)
    }
    if (q("action") === "cancel") {
      return redirectError(
        checked.redirectUri,
        q,
        "access_denied",
        "AADSTS65004: User declined to consent to access the app."
      )
    }
    const username = q("username")
    const user = username === undefined ? undefined : findUser(state, username)
    if (user === undefined || !passwordMatches(user, fields.password)) {
      return form(
        path,
        (name) => name === "login_hint" ? username : q(name),
        appName,
        "Your account or password is incorrect."
      )
    }
    return deliver(q, yield* redirectWithCode(state, checked, user, q))
  }).pipe(Effect.catchAll((e) => entraResponse(state, e)))

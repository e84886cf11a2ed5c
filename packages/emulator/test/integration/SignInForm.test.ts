/**
 * The emulator's sign-in form at `/{tenant}/oauth2/v2.0/authorize`, driven over real HTTP as a browser would.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { withEnv } from "../../../../test/support/helpers.js"
import * as IdentityEmulator from "../../src/IdentityEmulator.js"

const USER = "ada@emulator.test"
const PASSWORD = "ada-password"
const REDIRECT = "http://localhost:41234/cb"

interface Answer {
  readonly status: number
  readonly location: string | null
  readonly contentType: string | null
  readonly text: string
}

const send = (url: string, init: RequestInit = {}) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, { redirect: "manual", ...init })
    return {
      status: response.status,
      location: response.headers.get("location"),
      contentType: response.headers.get("content-type"),
      text: await response.text()
    }
  })

/** The hidden fields of the form, plus what the user typed, POSTed to the form's action. */
const submit = (emulator: IdentityEmulator.Service, page: string, typed: Record<string, string>) => {
  const action = /<form method="post" action="([^"]+)"/.exec(page)![1]!
  const fields: Record<string, string> = {}
  for (const match of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[match[1]!] = match[2]!.replace(/&amp;/g, "&").replace(/&quot;/g, "\"").replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">").replace(/&#39;/g, "'")
  }
  return send(new URL(action, emulator.url).toString(), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ ...fields, ...typed }).toString()
  })
}

const withEmulator = <A, E>(f: (emulator: IdentityEmulator.Service) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const emulator = yield* IdentityEmulator.make({
      apps: [{ clientId: IdentityEmulator.defaultClientId, publicClient: true }],
      users: [{ username: USER, password: PASSWORD }, { username: "nopassword@emulator.test" }]
    })
    return yield* f(emulator)
  }).pipe(Effect.scoped, withEnv({}))

const authorizeUrl = (emulator: IdentityEmulator.Service, extra: Record<string, string> = {}) =>
  `${emulator.endpoints.authorize}?${new URLSearchParams({
    client_id: emulator.clientId,
    redirect_uri: REDIRECT,
    response_type: "code",
    scope: "https://vault.azure.net/.default openid offline_access",
    state: "st<\"ate>",
    code_challenge: "challenge",
    code_challenge_method: "S256",
    ...extra
  })}`

describe("IdentityEmulator sign-in form", () => {
  it.live("GET shows the form (login_hint pre-filled, parameters carried, escaped); POST signs in and redirects", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const page = yield* send(authorizeUrl(emulator, { login_hint: USER }))
        assert.strictEqual(page.status, 200)
        assert.include(page.contentType, "text/html")
        assert.include(page.text, `name="username" type="text" autocomplete="username" value="${USER}"`)
        assert.include(page.text, "value=\"st&lt;&quot;ate&gt;\"")
        assert.notInclude(page.text, "st<\"ate>")
        const wrong = yield* submit(emulator, page.text, { username: USER, password: "nope" })
        assert.strictEqual(wrong.status, 200)
        assert.include(wrong.text, "Your account or password is incorrect.")
        assert.include(wrong.text, `value="${USER}"`)
        const unknown = yield* submit(emulator, page.text, { username: "nobody@emulator.test", password: PASSWORD })
        assert.include(unknown.text, "Your account or password is incorrect.")
        const noPassword = yield* submit(emulator, page.text, { username: "nopassword@emulator.test", password: "" })
        assert.include(noPassword.text, "Your account or password is incorrect.")
        const right = yield* submit(emulator, wrong.text, { username: USER, password: PASSWORD })
        assert.strictEqual(right.status, 302)
        const location = new URL(right.location!)
        assert.strictEqual(location.origin + location.pathname, REDIRECT)
        assert.strictEqual(location.searchParams.get("state"), "st<\"ate>")
        assert.match(location.searchParams.get("code")!, /^1\.emulator-code\./)
        assert.isString(location.searchParams.get("client_info"))
      })
    ))

  it.live("Cancel redirects with access_denied (AADSTS65004) and the state", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const page = yield* send(authorizeUrl(emulator))
        const cancelled = yield* submit(emulator, page.text, { action: "cancel" })
        assert.strictEqual(cancelled.status, 302)
        const location = new URL(cancelled.location!)
        assert.strictEqual(location.searchParams.get("error"), "access_denied")
        assert.match(location.searchParams.get("error_description")!, /^AADSTS65004: /)
        assert.strictEqual(location.searchParams.get("state"), "st<\"ate>")
        assert.isNull(location.searchParams.get("code"))
      })
    ))

  it.live("prompt=none: login_hint is signed in at once; an unknown one gets login_required", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const silent = yield* send(authorizeUrl(emulator, { prompt: "none", login_hint: USER }))
        assert.strictEqual(silent.status, 302)
        assert.isString(new URL(silent.location!).searchParams.get("code"))
        const unknown = yield* send(authorizeUrl(emulator, { prompt: "none", login_hint: "nobody@emulator.test" }))
        assert.strictEqual(unknown.status, 302)
        const location = new URL(unknown.location!)
        assert.strictEqual(location.searchParams.get("error"), "login_required")
        assert.match(location.searchParams.get("error_description")!, /^AADSTS50058: /)
      })
    ))

  it.live("response_mode=form_post answers with a page that POSTs code and state to the redirect URI", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const page = yield* send(authorizeUrl(emulator, { response_mode: "form_post" }))
        const posted = yield* submit(emulator, page.text, { username: USER, password: PASSWORD })
        assert.strictEqual(posted.status, 200)
        assert.include(posted.text, `<form id="result" method="post" action="${REDIRECT}">`)
        assert.match(posted.text, /name="code" value="1\.emulator-code\./)
        assert.include(posted.text, "name=\"state\" value=\"st&lt;&quot;ate&gt;\"")
      })
    ))

  it.live("a bad client or redirect URI is an Entra error, never a form; other methods are 405", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const unknownClient = yield* send(authorizeUrl(emulator, { client_id: "not-registered" }))
        assert.strictEqual(unknownClient.status, 400)
        assert.include(unknownClient.text, "AADSTS700016")
        const notUrl = yield* send(authorizeUrl(emulator, { redirect_uri: "not a url" }))
        assert.include(notUrl.text, "AADSTS90102")
        const forged = yield* send(emulator.endpoints.authorize, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({
            client_id: emulator.clientId,
            redirect_uri: "javascript:alert(1)",
            username: USER,
            password: PASSWORD
          }).toString()
        })
        assert.strictEqual(forged.status, 400)
        assert.include(forged.text, "AADSTS50011")
        const put = yield* send(authorizeUrl(emulator), { method: "PUT" })
        assert.strictEqual(put.status, 405)
      })
    ))
})

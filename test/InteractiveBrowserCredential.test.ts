import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { createHash } from "node:crypto"
import * as Http from "node:http"
import * as AuthenticationRecord from "../src/AuthenticationRecord.js"
import * as DeviceCodeCredential from "../src/DeviceCodeCredential.js"
import * as InteractiveBrowserCredential from "../src/InteractiveBrowserCredential.js"
import * as IdentityNode from "../src/node.js"
import { Platform } from "../src/SharedTokenCacheCredential.js"
import * as TokenCache from "../src/TokenCache.js"
import * as TokenCredential from "../src/TokenCredential.js"
import * as UserCredential from "../src/UserCredential.js"
import * as UsernamePasswordCredential from "../src/UsernamePasswordCredential.js"
import { failureOf, setNow, settle, tokenValue, withEnv } from "./support/helpers.js"
import { hang, mockExecutor, notFound } from "./support/mockCommand.js"
import type { Recorded } from "./support/mockHttp.js"
import { json, mockHttp, tokenBody } from "./support/mockHttp.js"

const AUTHORITY = "https://login.example.test"
const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const GRAPH = "https://graph.microsoft.com/User.Read"
const VAULT = "https://vault.azure.net/.default"
const FAKE_PORT = 50123
const KEY = Redacted.make("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
const idToken = (claims: Record<string, string>) => `${b64url({ alg: "none" })}.${b64url(claims)}.sig`

/** A token endpoint answering as Entra does for a user of the `uid.utid` account. */
const entra = (uid = "user-oid") =>
  mockHttp((r, i) =>
    json(
      200,
      tokenBody(`at-${i}-${r.form.grant_type}`, 3600, {
        refresh_token: `rt-${i}`,
        client_info: b64url({ uid, utid: TENANT }),
        id_token: idToken({ oid: uid, tid: TENANT, preferred_username: "ada@contoso.test" })
      })
    )
  )

interface Visit {
  readonly status: number
  readonly body: string
}

/**
 * A fake loopback server (no socket): it keeps the app it serves so the fake browser can call it. Records the ports
 * asked for and whether the listener was closed.
 */
const fakeServer = (options: { readonly fail?: string } = {}) => {
  let app:
    | ((request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse>)
    | undefined
  const state = { listens: [] as Array<number>, open: 0, closed: 0 }
  const layer = Layer.succeed(InteractiveBrowserCredential.LoopbackServer, {
    listen: ({ port }) =>
      Effect.gen(function*() {
        state.listens.push(port)
        if (options.fail !== undefined) {
          return yield* Effect.fail(new HttpServerError.ServeError({ cause: new Error(options.fail) }))
        }
        state.open++
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            state.open--
            state.closed++
            app = undefined
          })
        )
        return HttpServer.make({
          address: { _tag: "TcpAddress", hostname: "127.0.0.1", port: port === 0 ? FAKE_PORT : port },
          serve: (httpApp) =>
            Effect.sync(() => {
              app = (request) =>
                (httpApp as Effect.Effect<
                  HttpServerResponse.HttpServerResponse,
                  unknown,
                  HttpServerRequest.HttpServerRequest
                >)
                  .pipe(
                    Effect.provideService(HttpServerRequest.HttpServerRequest, request),
                    Effect.orDie
                  )
            })
        })
      })
  })
  /** What a browser gets for `method url` (the listener must be serving). */
  const visit = (url: string, method = "GET"): Effect.Effect<Visit> =>
    Effect.gen(function*() {
      if (app === undefined) return { status: 0, body: "connection refused" }
      const response = yield* app(HttpServerRequest.fromWeb(new Request(url, { method })))
      const web = HttpServerResponse.toWeb(response)
      return { status: web.status, body: yield* Effect.promise(() => web.text()) }
    })
  return { state, layer, visit }
}

/** A browser opener that records the URLs and runs `then` with each (the "user" in the browser). */
const fakeBrowser = (then: (authorizeUrl: URL) => Effect.Effect<void> = () => Effect.void) => {
  const opened: Array<URL> = []
  const layer = Layer.succeed(InteractiveBrowserCredential.BrowserOpener, {
    open: (url) =>
      Effect.suspend(() => {
        const parsed = new URL(url)
        opened.push(parsed)
        return then(parsed)
      })
  })
  return { opened, layer }
}

/** The redirect the authorize endpoint would make, with `params` (and the flow's state unless given). */
const redirect = (authorize: URL, params: Record<string, string>) => {
  const target = new URL(authorize.searchParams.get("redirect_uri")!)
  for (const [k, v] of Object.entries({ state: authorize.searchParams.get("state")!, ...params })) {
    target.searchParams.set(k, v)
  }
  return target.toString()
}

/** Until the flow sleeps on the clock (its bounded wait for the browser), so `TestClock.adjust` reaches it. */
const waitingForTheBrowser = Effect.gen(function*() {
  while ((yield* TestClock.sleeps()).length === 0) yield* Effect.yieldNow()
})

const credential = (
  deps: {
    readonly http: ReturnType<typeof mockHttp>
    readonly server: ReturnType<typeof fakeServer>
    readonly browser: ReturnType<typeof fakeBrowser>
  },
  options: InteractiveBrowserCredential.Options = {}
) =>
  InteractiveBrowserCredential.layer({ tenantId: TENANT, clientId: CLIENT, authorityHost: AUTHORITY, ...options }).pipe(
    Layer.provide(Layer.mergeAll(
      deps.http.layer,
      deps.server.layer,
      deps.browser.layer,
      mockExecutor(() => {
        throw new Error("no command may run")
      }).layer
    ))
  )

describe("InteractiveBrowserCredential", () => {
  it.effect("authorization code flow with PKCE S256 and state; the listener answers once, then closes", () => {
    const http = entra()
    const server = fakeServer()
    const pages: Array<Visit> = []
    const browser = fakeBrowser((authorize) =>
      Effect.gen(function*() {
        pages.push(yield* server.visit(redirect(authorize, { code: "the-code" })))
        pages.push(yield* server.visit(redirect(authorize, { code: "the-code" })))
      })
    )
    return Effect.gen(function*() {
      yield* setNow
      const token = yield* TokenCredential.getToken(GRAPH)
      assert.strictEqual(tokenValue(token), "at-0-authorization_code")
      assert.strictEqual(browser.opened.length, 1)
      const url = browser.opened[0]!
      assert.strictEqual(url.origin + url.pathname, `${AUTHORITY}/${TENANT}/oauth2/v2.0/authorize`)
      const q = url.searchParams
      assert.strictEqual(q.get("client_id"), CLIENT)
      assert.strictEqual(q.get("response_type"), "code")
      assert.strictEqual(q.get("redirect_uri"), `http://localhost:${FAKE_PORT}`)
      assert.strictEqual(q.get("scope"), `${GRAPH} openid profile offline_access`)
      assert.strictEqual(q.get("code_challenge_method"), "S256")
      assert.strictEqual(q.get("prompt"), "select_account")
      assert.match(q.get("state")!, /^[A-Za-z0-9_-]{22}$/)
      assert.deepStrictEqual(server.state.listens, [0])
      // the redemption: same redirect URI, the verifier whose S256 is the challenge
      const redeem = http.requests[0]!
      assert.strictEqual(redeem.url.toString(), `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
      assert.strictEqual(redeem.form.grant_type, "authorization_code")
      assert.strictEqual(redeem.form.code, "the-code")
      assert.strictEqual(redeem.form.redirect_uri, `http://localhost:${FAKE_PORT}`)
      assert.isUndefined(redeem.form.client_secret)
      const verifier = redeem.form.code_verifier!
      assert.match(verifier, /^[A-Za-z0-9_-]{43}$/)
      assert.strictEqual(createHash("sha256").update(verifier).digest("base64url"), q.get("code_challenge"))
      // the browser's pages: success, then "already complete"
      assert.strictEqual(pages[0]!.status, 200)
      assert.include(pages[0]!.body, "You can close this window")
      assert.strictEqual(pages[1]!.status, 400)
      assert.strictEqual(server.state.open, 0)
      assert.strictEqual(server.state.closed, 1)
      // another scope: the refresh token, no browser
      const vault = yield* TokenCredential.getToken(VAULT)
      assert.strictEqual(tokenValue(vault), "at-1-refresh_token")
      assert.strictEqual(http.requests[1]!.form.refresh_token, "rt-0")
      assert.strictEqual(browser.opened.length, 1)
    }).pipe(Effect.provide(credential({ http, server, browser })), withEnv())
  })

  it.effect("loginHint, domainHint, prompt and a redirectUri with a port and a path", () => {
    const http = entra()
    const server = fakeServer()
    const pages: Array<Visit> = []
    const browser = fakeBrowser((authorize) =>
      Effect.gen(function*() {
        pages.push(
          yield* server.visit("http://localhost:8400/other?code=x&state=" + authorize.searchParams.get("state"))
        )
        pages.push(yield* server.visit(redirect(authorize, { code: "c" }), "POST"))
        pages.push(yield* server.visit("http://localhost:8400/auth/callback"))
        pages.push(yield* server.visit(redirect(authorize, { code: "c" })))
      })
    )
    return Effect.gen(function*() {
      yield* setNow
      yield* TokenCredential.getToken(GRAPH)
      const q = browser.opened[0]!.searchParams
      assert.strictEqual(q.get("login_hint"), "ada@contoso.test")
      assert.strictEqual(q.get("domain_hint"), "contoso.test")
      assert.strictEqual(q.get("prompt"), "login")
      assert.strictEqual(q.get("redirect_uri"), "http://localhost:8400/auth/callback")
      assert.deepStrictEqual(server.state.listens, [8400])
      // only GET on the expected path with a response completes the flow
      assert.deepStrictEqual(pages.map((p) => p.status), [404, 405, 400, 200])
      assert.strictEqual(http.requests[0]!.form.redirect_uri, "http://localhost:8400/auth/callback")
    }).pipe(
      Effect.provide(credential({ http, server, browser }, {
        loginHint: "ada@contoso.test",
        domainHint: "contoso.test",
        prompt: "login",
        redirectUri: "http://localhost:8400/auth/callback"
      })),
      withEnv()
    )
  })

  it.effect("access_denied (the user declined) is a ClientAuthenticationError saying so; no code is redeemed", () => {
    const http = entra()
    const server = fakeServer()
    const pages: Array<Visit> = []
    const browser = fakeBrowser((authorize) =>
      Effect.map(
        server.visit(redirect(authorize, {
          error: "access_denied",
          error_description: "AADSTS65004: User declined to consent to access the app. <script>"
        })),
        (page) => {
          pages.push(page)
        }
      )
    )
    return Effect.gen(function*() {
      yield* setNow
      const error = failureOf(yield* Effect.exit(TokenCredential.getToken(GRAPH)))
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      if (error._tag !== "ClientAuthenticationError") return
      assert.strictEqual(error.error, "access_denied")
      assert.include(error.message, "declined")
      assert.include(error.message, "AADSTS65004")
      assert.strictEqual(http.requests.length, 0)
      assert.include(pages[0]!.body, "The sign-in failed.")
      assert.include(pages[0]!.body, "&lt;script&gt;")
      assert.notInclude(pages[0]!.body, "<script>")
      assert.strictEqual(server.state.open, 0)
    }).pipe(Effect.provide(credential({ http, server, browser })), withEnv())
  })

  it.effect("a response with another state is answered 400 and ignored; the right one still completes", () => {
    const http = entra()
    const server = fakeServer()
    const pages: Array<Visit> = []
    const browser = fakeBrowser((authorize) =>
      Effect.gen(function*() {
        pages.push(yield* server.visit(redirect(authorize, { code: "forged", state: "not-the-state" })))
        pages.push(yield* server.visit(redirect(authorize, { code: "real" })))
      })
    )
    return Effect.gen(function*() {
      yield* setNow
      yield* TokenCredential.getToken(GRAPH)
      assert.deepStrictEqual(pages.map((p) => p.status), [400, 200])
      assert.include(pages[0]!.body, "does not belong to the sign-in in progress")
      assert.strictEqual(http.requests.length, 1)
      assert.strictEqual(http.requests[0]!.form.code, "real")
    }).pipe(Effect.provide(credential({ http, server, browser })), withEnv())
  })

  it.effect("no answer from the browser: fails after the timeout (5 minutes by default, on the Clock), listener closed", () => {
    const http = entra()
    const server = fakeServer()
    const browser = fakeBrowser((authorize) =>
      Effect.asVoid(server.visit(redirect(authorize, { code: "forged", state: "wrong" })))
    )
    return Effect.gen(function*() {
      yield* setNow
      const fiber = yield* Effect.fork(TokenCredential.getToken(GRAPH))
      yield* waitingForTheBrowser
      yield* TestClock.adjust(Duration.seconds(299))
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      assert.strictEqual(server.state.open, 1)
      yield* TestClock.adjust(Duration.seconds(1))
      const error = failureOf(yield* Fiber.await(fiber))
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, "within 5m")
      assert.include(error.message, "browser window was probably closed")
      assert.include(error.message, "1 response(s) with a wrong state were ignored")
      assert.strictEqual(server.state.open, 0)
      assert.strictEqual(http.requests.length, 0)
    }).pipe(Effect.provide(credential({ http, server, browser })), withEnv())
  })

  it.effect("a caller that gives up (interrupted) closes the listener; the next getToken starts a new sign-in", () => {
    const http = entra()
    const server = fakeServer()
    const openings = Effect.runSync(Queue.unbounded<URL>())
    const browser = fakeBrowser((authorize) => Queue.offer(openings, authorize))
    return Effect.gen(function*() {
      yield* setNow
      const fiber = yield* Effect.fork(TokenCredential.getToken(GRAPH))
      const first = yield* Queue.take(openings)
      assert.strictEqual(server.state.open, 1)
      yield* Fiber.interrupt(fiber)
      yield* settle // the sign-in fiber is interrupted in the background
      assert.strictEqual(server.state.open, 0)
      const again = yield* Effect.fork(TokenCredential.getToken(GRAPH))
      const second = yield* Queue.take(openings)
      assert.notStrictEqual(first.searchParams.get("state"), second.searchParams.get("state"))
      assert.strictEqual(server.state.open, 1)
      yield* Fiber.interrupt(again)
    }).pipe(Effect.provide(credential({ http, server, browser })), withEnv())
  })

  it.effect("the timeout option bounds the wait", () => {
    const http = entra()
    const server = fakeServer()
    const browser = fakeBrowser()
    return Effect.gen(function*() {
      yield* setNow
      const fiber = yield* Effect.fork(TokenCredential.getToken(GRAPH))
      yield* waitingForTheBrowser
      yield* TestClock.adjust(Duration.seconds(30))
      const error = failureOf(yield* Fiber.await(fiber))
      assert.include(error.message, "within 30s")
    }).pipe(Effect.provide(credential({ http, server, browser }, { timeout: "30 seconds" })), withEnv())
  })

  it.effect("a port that cannot be listened on is CredentialUnavailableError naming the port; no browser opens", () => {
    const http = entra()
    const server = fakeServer({ fail: "listen EADDRINUSE: address already in use 127.0.0.1:8400" })
    const browser = fakeBrowser()
    return Effect.gen(function*() {
      const error = failureOf(yield* Effect.exit(TokenCredential.getToken(GRAPH)))
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "127.0.0.1:8400")
      assert.include(error.message, "EADDRINUSE")
      assert.include(error.message, "pick another port in redirectUri")
      assert.strictEqual(browser.opened.length, 0)
    }).pipe(
      Effect.provide(credential({ http, server, browser }, { redirectUri: "http://localhost:8400" })),
      withEnv()
    )
  })

  it.effect("a browser that cannot be opened is CredentialUnavailableError; the listener is closed", () => {
    const http = entra()
    const server = fakeServer()
    const layer = InteractiveBrowserCredential.layer({ tenantId: TENANT, clientId: CLIENT, authorityHost: AUTHORITY })
      .pipe(
        Layer.provide(Layer.mergeAll(
          http.layer,
          server.layer,
          Layer.succeed(InteractiveBrowserCredential.BrowserOpener, {
            open: () => Effect.fail(new InteractiveBrowserCredential.BrowserOpenError({ reason: "no display" }))
          }),
          mockExecutor(() => {
            throw new Error("no command may run")
          }).layer
        ))
      )
    return Effect.gen(function*() {
      const error = failureOf(yield* Effect.exit(TokenCredential.getToken(GRAPH)))
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "no display")
      assert.include(error.message, "DeviceCodeCredential")
      assert.strictEqual(server.state.open, 0)
    }).pipe(Effect.provide(layer), withEnv())
  })

  it.effect("a redirect URI that is not loopback http is CredentialUnavailableError; nothing listens", () => {
    const http = entra()
    const server = fakeServer()
    const browser = fakeBrowser()
    return Effect.gen(function*() {
      const error = failureOf(yield* Effect.exit(TokenCredential.getToken(GRAPH)))
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "not a loopback address")
      assert.deepStrictEqual(server.state.listens, [])
    }).pipe(
      Effect.provide(credential({ http, server, browser }, { redirectUri: "https://app.example.test/cb" })),
      withEnv()
    )
  })

  it.effect("the default opener runs xdg-open / open / cmd /c start with the URL as one argument, no shell", () =>
    Effect.gen(function*() {
      const url = "https://login.example.test/t/oauth2/v2.0/authorize?a=1&b=%20x"
      for (
        const [platform, argv] of [
          ["linux", ["xdg-open", url]],
          ["darwin", ["open", url]],
          ["win32", ["cmd", "/c", "start", "\"\"", "https://login.example.test/t/oauth2/v2.0/authorize?a=1^&b=^%20x"]]
        ] as Array<[string, Array<string>]>
      ) {
        const executor = mockExecutor(() => ({ _tag: "output", exitCode: 0 }))
        const opener = yield* InteractiveBrowserCredential.systemBrowserOpener.pipe(
          Effect.provide(executor.layer),
          Effect.provideService(Platform, platform)
        )
        yield* opener.open(url)
        assert.deepStrictEqual([executor.commands[0]!.executable, ...executor.commands[0]!.args], argv)
        assert.strictEqual(executor.commands[0]!.shell, false)
      }
      const failing = mockExecutor(() => ({ _tag: "output", exitCode: 3 }))
      const opener = yield* InteractiveBrowserCredential.systemBrowserOpener.pipe(
        Effect.provide(failing.layer),
        Effect.provideService(Platform, "linux")
      )
      const error = yield* Effect.flip(opener.open(url))
      assert.include(error.message, "xdg-open exited with code 3")
      // no launcher installed: a clear error at once
      const missing = yield* InteractiveBrowserCredential.systemBrowserOpener.pipe(
        Effect.provide(mockExecutor(() => notFound).layer),
        Effect.provideService(Platform, "linux")
      )
      const notInstalled = yield* Effect.flip(missing.open(url))
      assert.include(notInstalled.message, "xdg-open was not found")
      // a launcher that keeps running (waits for the browser) counts as opened after 5 s, and is left running
      const waiting = mockExecutor(() => hang)
      const patient = yield* InteractiveBrowserCredential.layerSystemBrowserOpener.pipe(
        Layer.provide(waiting.layer),
        Layer.build,
        Effect.map(Context.get(InteractiveBrowserCredential.BrowserOpener)),
        Effect.provideService(Platform, "linux")
      )
      const opening = yield* Effect.fork(patient.open(url))
      yield* waitingForTheBrowser
      yield* TestClock.adjust(Duration.seconds(4))
      assert.isTrue(Option.isNone(yield* Fiber.poll(opening)))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.join(opening)
      assert.isFalse(waiting.commands[0]!.killed)
    }).pipe(Effect.scoped))

  it.effect("a real loopback listener (node:http) on a busy port: CredentialUnavailableError, port named", () =>
    Effect.gen(function*() {
      const busy = Http.createServer()
      const port = yield* Effect.async<number>((resume) => {
        busy.listen(0, "127.0.0.1", () => {
          resume(Effect.succeed((busy.address() as { port: number }).port))
        })
      })
      yield* Effect.addFinalizer(() =>
        Effect.async<void>((resume) => {
          busy.close(() => resume(Effect.void))
        })
      )
      const browser = fakeBrowser()
      const error = yield* TokenCredential.getToken(GRAPH).pipe(
        Effect.flip,
        Effect.provide(
          InteractiveBrowserCredential.layer({
            tenantId: TENANT,
            clientId: CLIENT,
            authorityHost: AUTHORITY,
            redirectUri: `http://localhost:${port}`
          }).pipe(
            Layer.provide(
              Layer.mergeAll(
                entra().layer,
                IdentityNode.layerLoopbackServer,
                browser.layer,
                mockExecutor(() => {
                  throw new Error("no command may run")
                }).layer
              )
            )
          )
        )
      )
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, `127.0.0.1:${port}`)
      assert.include(error.message, "EADDRINUSE")
      assert.strictEqual(browser.opened.length, 0)
    }).pipe(Effect.scoped, withEnv()))
})

describe("authenticate() and AuthenticationRecord", () => {
  it.effect("disableAutomaticAuthentication: getToken fails with AuthenticationRequiredError, authenticate signs in", () => {
    const http = entra("the-oid")
    const server = fakeServer()
    const browser = fakeBrowser((authorize) => Effect.asVoid(server.visit(redirect(authorize, { code: "c" }))))
    return Effect.gen(function*() {
      yield* setNow
      const before = failureOf(yield* Effect.exit(TokenCredential.getToken(GRAPH)))
      assert.strictEqual(before._tag, "AuthenticationRequiredError")
      assert.include(before.message, "call authenticate()")
      if (before._tag === "AuthenticationRequiredError") assert.deepStrictEqual(before.scopes, [GRAPH])
      assert.strictEqual(browser.opened.length, 0)
      assert.isTrue(Option.isNone(yield* UserCredential.record))
      const record = yield* UserCredential.authenticate(GRAPH)
      assert.strictEqual(browser.opened.length, 1)
      assert.deepStrictEqual(JSON.parse(AuthenticationRecord.serialize(record)), {
        authority: "login.example.test",
        homeAccountId: `the-oid.${TENANT}`,
        tenantId: TENANT,
        username: "ada@contoso.test",
        clientId: CLIENT,
        version: "1.0"
      })
      assert.deepStrictEqual(yield* UserCredential.record, Option.some(record))
      // the token of the sign-in is cached; another scope uses the refresh token
      assert.strictEqual(tokenValue(yield* TokenCredential.getToken(GRAPH)), "at-0-authorization_code")
      assert.strictEqual(tokenValue(yield* TokenCredential.getToken(VAULT)), "at-1-refresh_token")
      assert.strictEqual(browser.opened.length, 1)
    }).pipe(Effect.provide(credential({ http, server, browser }, { disableAutomaticAuthentication: true })), withEnv())
  })

  it.effect("a record written by authenticate() is read back by a new layer that never prompts (encrypted cache)", () => {
    const store = KeyValueStore.layerMemory
    return Effect.gen(function*() {
      yield* setNow
      const kv = yield* KeyValueStore.KeyValueStore
      const cache = TokenCache.layerKeyValueStore({ encryptionKey: KEY }).pipe(
        Layer.provide(Layer.succeed(KeyValueStore.KeyValueStore, kv))
      )
      // first run: the user signs in, the record is saved as JSON
      const first = { http: entra("the-oid"), server: fakeServer(), browser: fakeBrowser() }
      const firstBrowser = fakeBrowser((authorize) =>
        Effect.asVoid(first.server.visit(redirect(authorize, { code: "c" })))
      )
      const saved = yield* UserCredential.authenticate(GRAPH).pipe(
        Effect.map(AuthenticationRecord.serialize),
        Effect.provide(credential({ ...first, browser: firstBrowser }).pipe(Layer.provide(cache)))
      )
      assert.strictEqual(first.http.requests.length, 1)
      // the refresh token is at rest, encrypted: its value appears nowhere in the store
      const size = yield* kv.size
      assert.strictEqual(size, 1)
      // second run ("after a restart"): a new layer with the record, never prompting
      const record = yield* AuthenticationRecord.deserialize(saved)
      const second = { http: entra("the-oid"), server: fakeServer(), browser: fakeBrowser() }
      const token = yield* TokenCredential.getToken(VAULT).pipe(
        Effect.provide(
          InteractiveBrowserCredential.layer({
            authorityHost: AUTHORITY,
            authenticationRecord: record,
            disableAutomaticAuthentication: true
          }).pipe(
            Layer.provide(Layer.mergeAll(second.http.layer, second.server.layer, second.browser.layer, cache)),
            Layer.provide(
              mockExecutor(() => {
                throw new Error("no command may run")
              }).layer
            )
          )
        )
      )
      assert.strictEqual(tokenValue(token), "at-0-refresh_token")
      assert.strictEqual(second.browser.opened.length, 0)
      assert.deepStrictEqual(second.server.state.listens, [])
      const refresh: Recorded = second.http.requests[0]!
      assert.strictEqual(refresh.form.refresh_token, "rt-0")
      assert.strictEqual(refresh.form.client_id, CLIENT)
      assert.strictEqual(refresh.url.pathname, `/${TENANT}/oauth2/v2.0/token`)
      // a record of another account finds nothing and, never prompting, needs authentication
      const stranger = new AuthenticationRecord.AuthenticationRecord({ ...record, homeAccountId: `other.${TENANT}` })
      const third = { http: entra(), server: fakeServer(), browser: fakeBrowser() }
      const error = yield* TokenCredential.getToken(VAULT).pipe(
        Effect.flip,
        Effect.provide(
          InteractiveBrowserCredential.layer({
            authorityHost: AUTHORITY,
            authenticationRecord: stranger,
            disableAutomaticAuthentication: true
          }).pipe(
            Layer.provide(Layer.mergeAll(third.http.layer, third.server.layer, third.browser.layer, cache)),
            Layer.provide(
              mockExecutor(() => {
                throw new Error("no command may run")
              }).layer
            )
          )
        )
      )
      assert.strictEqual(error._tag, "AuthenticationRequiredError")
      assert.strictEqual(third.http.requests.length, 0)
      assert.strictEqual(third.browser.opened.length, 0)
    }).pipe(Effect.provide(store), withEnv())
  })

  it.effect("the refresh token is stored encrypted, per account: no plaintext in the store, another key is a miss", () =>
    Effect.gen(function*() {
      yield* setNow
      const entries = new Map<string, string>()
      const kv = Layer.succeed(
        KeyValueStore.KeyValueStore,
        KeyValueStore.make({
          get: (key) => Effect.sync(() => Option.fromNullable(entries.get(key))),
          getUint8Array: (key) =>
            Effect.sync(() => Option.map(Option.fromNullable(entries.get(key)), (v) => new TextEncoder().encode(v))),
          set: (key, value) =>
            Effect.sync(() => {
              entries.set(key, typeof value === "string" ? value : new TextDecoder().decode(value))
            }),
          remove: (key) =>
            Effect.sync(() => {
              entries.delete(key)
            }),
          clear: Effect.sync(() => entries.clear()),
          size: Effect.sync(() => entries.size)
        })
      )
      const cacheWith = (key: Redacted.Redacted<string>) =>
        TokenCache.layerKeyValueStore({ encryptionKey: key }).pipe(Layer.provide(kv))
      const deps = { http: entra("the-oid"), server: fakeServer(), browser: fakeBrowser() }
      const browser = fakeBrowser((authorize) => Effect.asVoid(deps.server.visit(redirect(authorize, { code: "c" }))))
      const record = yield* UserCredential.authenticate(GRAPH).pipe(
        Effect.provide(credential({ ...deps, browser }).pipe(Layer.provide(cacheWith(KEY))))
      )
      assert.strictEqual(entries.size, 1)
      const [storeKey, value] = [...entries][0]!
      assert.notInclude(storeKey, "the-oid")
      assert.notInclude(value, "rt-0")
      assert.include(value, "A256GCM")
      // the same record with a cache under another key: the entry cannot be read, so authentication is required
      const other = { http: entra("the-oid"), server: fakeServer(), browser: fakeBrowser() }
      const error = yield* TokenCredential.getToken(GRAPH).pipe(
        Effect.flip,
        Effect.provide(
          credential(other, { authenticationRecord: record, disableAutomaticAuthentication: true }).pipe(
            Layer.provide(cacheWith(Redacted.make("f".repeat(64))))
          )
        )
      )
      assert.strictEqual(error._tag, "AuthenticationRequiredError")
      assert.strictEqual(other.http.requests.length, 0)
    }).pipe(withEnv()))
})

describe("a record without a cached refresh token", () => {
  it.effect("prompts (automatic authentication on) with the record's tenant, client id and username as login_hint", () => {
    const http = entra()
    const server = fakeServer()
    const browser = fakeBrowser((authorize) => Effect.asVoid(server.visit(redirect(authorize, { code: "c" }))))
    const record = new AuthenticationRecord.AuthenticationRecord({
      authority: "login.example.test",
      homeAccountId: "oid.record-tenant",
      clientId: "record-client",
      tenantId: "record-tenant",
      username: "grace@contoso.test",
      version: "1.0"
    })
    return Effect.gen(function*() {
      yield* setNow
      yield* TokenCredential.getToken(GRAPH)
      const url = browser.opened[0]!
      assert.strictEqual(url.pathname, "/record-tenant/oauth2/v2.0/authorize")
      assert.strictEqual(url.searchParams.get("client_id"), "record-client")
      assert.strictEqual(url.searchParams.get("login_hint"), "grace@contoso.test")
      assert.strictEqual(http.requests[0]!.form.client_id, "record-client")
    }).pipe(
      Effect.provide(
        InteractiveBrowserCredential.layer({ authorityHost: AUTHORITY, authenticationRecord: record }).pipe(
          Layer.provide(Layer.mergeAll(
            http.layer,
            server.layer,
            browser.layer,
            mockExecutor(() => {
              throw new Error("no command may run")
            }).layer
          ))
        )
      ),
      withEnv()
    )
  })
})

describe("authenticate() on the other user credentials", () => {
  it.effect("UsernamePasswordCredential and DeviceCodeCredential provide UserCredential too", () =>
    Effect.gen(function*() {
      yield* setNow
      const http = entra("pw-oid")
      const record = yield* UserCredential.authenticate(GRAPH).pipe(
        Effect.provide(
          UsernamePasswordCredential.layer({
            tenantId: TENANT,
            clientId: CLIENT,
            username: "ada@contoso.test",
            password: Redacted.make("pw"),
            authorityHost: AUTHORITY
          }).pipe(Layer.provide(http.layer))
        )
      )
      assert.strictEqual(record.homeAccountId, `pw-oid.${TENANT}`)
      assert.strictEqual(http.requests[0]!.form.grant_type, "password")
      // a device code credential given that record and told never to prompt: no device code is requested
      const device = entra("pw-oid")
      const error = yield* TokenCredential.getToken(GRAPH).pipe(
        Effect.flip,
        Effect.provide(
          DeviceCodeCredential.layer({
            authorityHost: AUTHORITY,
            authenticationRecord: record,
            disableAutomaticAuthentication: true
          }).pipe(Layer.provide(device.layer))
        )
      )
      assert.strictEqual(error._tag, "AuthenticationRequiredError")
      assert.strictEqual(device.requests.length, 0)
    }).pipe(withEnv()))

  it.effect("UsernamePasswordCredential.layerConfig: missing configuration makes authenticate unavailable too", () =>
    Effect.gen(function*() {
      const http = entra()
      const error = yield* UserCredential.authenticate(GRAPH).pipe(
        Effect.flip,
        Effect.provide(UsernamePasswordCredential.layerConfig().pipe(Layer.provide(http.layer)))
      )
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "AZURE_TENANT_ID")
      assert.strictEqual(http.requests.length, 0)
    }).pipe(withEnv()))
})

describe("AuthenticationRecord serialization", () => {
  const homeAccountId = "00000000-0000-0000-0000-000000000001.72f988bf-86f1-41af-91ab-2d7cd011db47"

  it.effect("accepts the JSON azure-identity for Python writes (json.dumps, its field order)", () =>
    Effect.gen(function*() {
      const python = "{\"authority\": \"login.microsoftonline.com\", \"clientId\": " +
        "\"04b07795-8ddb-461a-bbee-02f9e1bf7b46\", \"homeAccountId\": \"" + homeAccountId + "\", \"tenantId\": " +
        "\"72f988bf-86f1-41af-91ab-2d7cd011db47\", \"username\": \"ada@contoso.com\", \"version\": \"1.0\"}"
      const record = yield* AuthenticationRecord.deserialize(python)
      assert.strictEqual(record.authority, "login.microsoftonline.com")
      assert.strictEqual(record.homeAccountId, homeAccountId)
      assert.strictEqual(record.clientId, "04b07795-8ddb-461a-bbee-02f9e1bf7b46")
      assert.strictEqual(record.tenantId, "72f988bf-86f1-41af-91ab-2d7cd011db47")
      assert.strictEqual(record.username, "ada@contoso.com")
    }))

  it.effect("accepts the JSON @azure/identity writes and writes exactly that shape back", () =>
    Effect.gen(function*() {
      // as captured from @azure/identity 4 against a local authority (azure-protocol.md 17.4)
      const js = "{\"authority\":\"127.0.0.1:44667\",\"homeAccountId\":\"" + homeAccountId + "\",\"tenantId\":" +
        "\"72f988bf-86f1-41af-91ab-2d7cd011db47\",\"username\":\"ada@contoso.com\",\"clientId\":" +
        "\"04b07795-8ddb-461a-bbee-02f9e1bf7b46\",\"version\":\"1.0\"}"
      const record = yield* AuthenticationRecord.deserialize(js)
      assert.strictEqual(AuthenticationRecord.serialize(record), js)
    }))

  it.effect("an unsupported version, a missing field or text that is not JSON is a typed error", () =>
    Effect.gen(function*() {
      const base = {
        authority: "login.microsoftonline.com",
        homeAccountId,
        clientId: "c",
        tenantId: "t",
        username: "u",
        version: "1.0"
      }
      const v2 = yield* Effect.flip(AuthenticationRecord.deserialize(JSON.stringify({ ...base, version: "2.0" })))
      assert.include(v2.message, "version \"2.0\" is not supported")
      const { homeAccountId: _, ...noHome } = base
      const missing = yield* Effect.flip(AuthenticationRecord.deserialize(JSON.stringify(noHome)))
      assert.include(missing.message, "homeAccountId")
      const text = yield* Effect.flip(AuthenticationRecord.deserialize("not json"))
      assert.include(text.message, "not JSON")
      const array = yield* Effect.flip(AuthenticationRecord.deserialize("[]"))
      assert.strictEqual(array._tag, "AuthenticationRecordError")
    }))
})

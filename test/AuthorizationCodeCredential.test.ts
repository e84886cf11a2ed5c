import { assert, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { AuthorizationCodeCredential, TokenCache, TokenCredential } from "../src/index.js"
import {
  assertNoSecret,
  captureLogs,
  failureOf,
  setNow,
  settle,
  T0,
  tokenValue,
  withCredentialOver,
  withEnv
} from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, mockHttp, text, tokenBody } from "./support/mockHttp.js"

const CODE = "0.AAAA-the-authorization-code~value"
const SECRET = "web-app-secret~value"
const RT1 = "refresh-token-one-value"
const RT2 = "refresh-token-two-rotated"
const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const REDIRECT = "https://app.example.test/auth/callback"
const GRAPH = "https://graph.microsoft.com/User.Read"
const VAULT = "https://vault.azure.net/user_impersonation"
const AUTHORITY = "https://login.example.test"

const options = (extra: Partial<AuthorizationCodeCredential.Options> = {}): AuthorizationCodeCredential.Options => ({
  tenantId: TENANT,
  clientId: CLIENT,
  authorizationCode: Redacted.make(CODE),
  redirectUri: REDIRECT,
  authorityHost: AUTHORITY,
  ...extra
})

const withCredential = <A, E>(
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  extra: Partial<AuthorizationCodeCredential.Options> = {}
) => withCredentialOver(AuthorizationCodeCredential.layer(options(extra)), handler, f)

const userToken = (token: string, refreshToken: string | undefined, expiresIn = 3600) =>
  tokenBody(token, expiresIn, {
    scope: "openid profile offline_access",
    id_token: "header.payload.sig",
    client_info: "eyJ1aWQiOiJ1IiwidXRpZCI6InQifQ",
    ...(refreshToken !== undefined ? { refresh_token: refreshToken } : {})
  })

/** A fake Entra: redeems CODE once, rotates refresh tokens, revokes on demand. */
const fakeEntra =
  (state: { valid: Set<string>; codeUsed: boolean; rotate: boolean; counter: number }) => (r: Recorded): Answer => {
    state.counter++
    if (r.form.grant_type === "authorization_code") {
      if (r.form.redirect_uri !== REDIRECT) {
        return json(400, {
          error: "invalid_grant",
          error_description: "AADSTS50011: The redirect URI does not match the one used for the authorization code.",
          error_codes: [50011]
        })
      }
      if (state.codeUsed || r.form.code !== CODE) {
        return json(400, {
          error: "invalid_grant",
          error_description: "AADSTS54005: OAuth2 Authorization code was already redeemed.",
          error_codes: [54005]
        })
      }
      state.codeUsed = true
      state.valid.add(RT1)
      return json(200, userToken(`at-${state.counter}`, RT1))
    }
    if (r.form.grant_type === "refresh_token") {
      const rt = r.form.refresh_token!
      if (!state.valid.has(rt)) {
        return json(400, {
          error: "invalid_grant",
          error_description: "AADSTS700082: The refresh token has expired due to inactivity.",
          error_codes: [700082]
        })
      }
      if (state.rotate) {
        state.valid.delete(rt)
        const next = `${RT2}-${state.counter}`
        state.valid.add(next)
        return json(200, userToken(`at-${state.counter}`, next))
      }
      return json(200, userToken(`at-${state.counter}`, undefined))
    }
    return json(400, { error: "unsupported_grant_type" })
  }

const newState = (rotate = false) => ({ valid: new Set<string>(), codeUsed: false, rotate, counter: 0 })

describe("AuthorizationCodeCredential", () => {
  it.effect("redeems the code with offline_access, client_info and the secret", () =>
    withCredential(fakeEntra(newState()), (credential, requests) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(GRAPH)
        assert.strictEqual(tokenValue(token), "at-1")
        assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + 3600_000)
        assert.strictEqual(requests.length, 1)
        const r = requests[0]!
        assert.strictEqual(r.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
        assert.deepStrictEqual(r.form, {
          client_id: CLIENT,
          client_info: "1",
          client_secret: SECRET,
          grant_type: "authorization_code",
          code: CODE,
          redirect_uri: REDIRECT,
          scope: `${GRAPH} openid profile offline_access`
        })
        // cached for the same scopes
        yield* credential.getToken([GRAPH])
        assert.strictEqual(requests.length, 1)
      }), { clientSecret: Redacted.make(SECRET) }))

  it.effect("a public client sends no client_secret; PKCE verifier is forwarded", () =>
    withCredential(fakeEntra(newState()), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(GRAPH)
        assert.isUndefined(requests[0]!.form.client_secret)
        assert.strictEqual(requests[0]!.form.code_verifier, "verifier-123")
      }), { codeVerifier: Redacted.make("verifier-123") }))

  it.effect("uses the refresh token for other scopes, and for refresh after expiry", () =>
    withCredential(fakeEntra(newState()), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(GRAPH)
        const vault = yield* credential.getToken(VAULT)
        assert.strictEqual(tokenValue(vault), "at-2")
        assert.strictEqual(requests.length, 2)
        assert.deepStrictEqual(requests[1]!.form, {
          client_id: CLIENT,
          client_info: "1",
          client_secret: SECRET,
          grant_type: "refresh_token",
          refresh_token: RT1,
          scope: `${VAULT} openid profile offline_access`
        })
        // past expiry: the refresh token again (no refresh_token in that answer: the old one is kept)
        yield* TestClock.adjust("2 hours")
        const again = yield* credential.getToken(GRAPH)
        assert.strictEqual(tokenValue(again), "at-3")
        assert.strictEqual(requests[2]!.form.refresh_token, RT1)
        yield* credential.getToken(VAULT)
        assert.strictEqual(requests[3]!.form.refresh_token, RT1)
        assert.isTrue(requests.every((r, i) => i === 0 || r.form.code === undefined))
      }), { clientSecret: Redacted.make(SECRET) }))

  it.effect("a rotated refresh token replaces the old one", () =>
    withCredential(fakeEntra(newState(true)), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(GRAPH)
        yield* credential.getToken(VAULT) // RT1 -> RT2-2
        yield* credential.getToken("https://storage.azure.com/user_impersonation") // RT2-2 -> RT2-3
        assert.strictEqual(requests[1]!.form.refresh_token, RT1)
        assert.strictEqual(requests[2]!.form.refresh_token, `${RT2}-2`)
        yield* TestClock.adjust("2 hours")
        const token = yield* credential.getToken(GRAPH)
        assert.strictEqual(requests[3]!.form.refresh_token, `${RT2}-3`)
        assert.strictEqual(tokenValue(token), "at-4")
      })))

  it.effect("concurrent refreshes for different scopes use the newest rotated refresh token, one at a time", () =>
    withCredential(fakeEntra(newState(true)), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(GRAPH)
        const scopes = Array.from({ length: 5 }, (_, i) => `https://api${i}.example.test/.default`)
        const tokens = yield* Effect.all(scopes.map((s) => credential.getToken(s)), { concurrency: "unbounded" })
        assert.strictEqual(tokens.length, 5)
        assert.strictEqual(requests.length, 6)
        // each refresh used the token the previous one returned: none was replayed
        const used = requests.slice(1).map((r) => r.form.refresh_token)
        assert.strictEqual(new Set(used).size, 5)
        assert.strictEqual(used[0], RT1)
      })))

  it.effect("invalid_grant drops the refresh token; with the code spent the user must sign in again", () => {
    const state = newState()
    return withCredential(fakeEntra(state), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(GRAPH)
        state.valid.clear() // the user's sessions were revoked
        const error = failureOf(yield* Effect.exit(credential.getToken(VAULT)))
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        assert.include(error.message, "must sign in again")
        assert.include(error.message, "AADSTS700082")
        assert.strictEqual(requests.length, 2)
        // the dropped refresh token is not tried again, and the spent code is not sent again
        const next = failureOf(yield* Effect.exit(credential.getToken("https://other.example.test/.default")))
        assert.include(next.message, "must sign in again")
        assert.strictEqual(requests.length, 2)
        // the cached access token still serves its scopes
        assert.strictEqual(tokenValue(yield* credential.getToken(GRAPH)), "at-1")
        assertNoSecret(error, CODE, RT1, "at-1")
        assertNoSecret(next, CODE, RT1, "at-1")
      }))
  })

  it.effect("50 concurrent first callers share one redemption, across scopes", () =>
    Effect.gen(function*() {
      const latch = yield* Deferred.make<void>()
      const state = newState()
      const entra = fakeEntra(state)
      return yield* withCredential(
        (r) => r.form.grant_type === "authorization_code" ? Effect.as(Deferred.await(latch), entra(r)) : entra(r),
        (credential, requests) =>
          Effect.gen(function*() {
            const fibers = yield* Effect.forEach(
              Array.from({ length: 50 }),
              (_, i) => Effect.fork(credential.getToken(i % 2 === 0 ? GRAPH : VAULT))
            )
            yield* settle
            assert.strictEqual(requests.length, 1)
            yield* Deferred.succeed(latch, undefined)
            const tokens = yield* Effect.forEach(fibers, Fiber.join)
            assert.strictEqual(tokens.length, 50)
            const redemptions = requests.filter((r) => r.form.grant_type === "authorization_code")
            assert.strictEqual(redemptions.length, 1)
            // the other scope set came through the refresh token, once
            assert.strictEqual(requests.length, 2)
            assert.strictEqual(requests[1]!.form.grant_type, "refresh_token")
          })
      )
    }))

  it.effect("a failed redemption is never retried with the same code", () =>
    withCredential(fakeEntra(newState()), (credential, requests) =>
      Effect.gen(function*() {
        const exits = yield* Effect.all(
          Array.from({ length: 10 }, () => Effect.exit(credential.getToken(GRAPH))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(requests.length, 1)
        const error = failureOf(exits[0]!)
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        assert.include(error.message, "AADSTS50011")
        assert.include(error.message, "redirectUri")
        assertNoSecret(error, CODE)
        const later = failureOf(yield* Effect.exit(credential.getToken(GRAPH)))
        assert.include(later.message, "must sign in again")
        assert.include(later.message, "single-use")
        assert.strictEqual(requests.length, 1)
      }), { redirectUri: "https://app.example.test/wrong" }))

  it.effect("only redemption errors about the grant or the redirect URI get the redirect URI hint", () =>
    withCredential(
      (_, i) =>
        i === 0
          ? json(400, {
            error: "invalid_request",
            error_description: "AADSTS500113: No reply address (redirect) is registered."
          })
          : json(401, { error: "invalid_client", error_codes: [7000215] }),
      (credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(GRAPH)))
          assert.include(error.message, "redirectUri")
        })
    ).pipe(
      Effect.zipRight(withCredential(
        () => json(401, { error: "invalid_client", error_codes: [7000215] }),
        (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(GRAPH)))
            assert.include(error.message, "secret")
            assert.notInclude(error.message, "redirectUri")
          })
      ))
    ))

  it.effect("a code the authority says was already redeemed", () => {
    const state = newState()
    state.codeUsed = true
    return withCredential(fakeEntra(state), (credential) =>
      Effect.gen(function*() {
        const error = failureOf(yield* Effect.exit(credential.getToken(GRAPH)))
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        if (error._tag !== "ClientAuthenticationError") return
        assert.strictEqual(error.error, "invalid_grant")
        assert.deepStrictEqual(error.errorCodes, [54005])
        assert.include(error.message, "single-use")
        assertNoSecret(error, CODE)
      }))
  })

  it.effect("an interrupted first caller does not lose the redemption", () =>
    Effect.gen(function*() {
      const latch = yield* Deferred.make<void>()
      const entra = fakeEntra(newState())
      return yield* withCredential(
        (r) => Effect.as(Deferred.await(latch), entra(r)),
        (credential, requests) =>
          Effect.gen(function*() {
            const first = yield* Effect.fork(credential.getToken(GRAPH))
            yield* settle
            yield* Fiber.interrupt(first)
            yield* Deferred.succeed(latch, undefined)
            yield* settle
            const token = yield* credential.getToken(GRAPH)
            assert.strictEqual(tokenValue(token), "at-1")
            assert.strictEqual(requests.length, 1)
          })
      )
    }))

  describe("bad answers are typed errors without the code, secret or tokens", () => {
    const cases: ReadonlyArray<[string, () => Answer, string]> = [
      ["HTML page", () => text(200, "<html><title>Sign in</title></html>"), "Sign in"],
      ["malformed JSON", () => text(200, `{"access_token":"${CODE}`, "application/json"), "not JSON"],
      ["200 without a token", () => json(200, { refresh_token: RT1 }), "missing access_token"],
      ["HTML 400", () => text(400, "<html><title>Bad Request</title></html>"), "Bad Request"]
    ]
    for (const [title, answer, hint] of cases) {
      it.effect(title, () =>
        withCredential(answer, (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(GRAPH)))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, hint)
            assert.include(error.message, "AuthorizationCodeCredential")
            assertNoSecret(error, CODE, SECRET, RT1)
          }), { clientSecret: Redacted.make(SECRET) }))
    }
  })

  describe("invalid options are unavailable and send nothing", () => {
    const cases: ReadonlyArray<[string, Partial<AuthorizationCodeCredential.Options>, string]> = [
      ["an empty code", { authorizationCode: Redacted.make(" ") }, "authorization code is empty"],
      ["a relative redirect URI", { redirectUri: "/callback" }, "redirect URI"],
      ["a redirect URI with a fragment", { redirectUri: "https://a.test/cb#x" }, "fragment"],
      ["no tenant", { tenantId: "" }, "tenant"],
      ["an http authority", { authorityHost: "http://login.example.test" }, "loopback"]
    ]
    for (const [title, extra, hint] of cases) {
      it.effect(
        title,
        () =>
          withCredential(() => json(200, userToken("x", RT1)), (credential, requests) =>
            Effect.gen(function*() {
              const error = failureOf(yield* Effect.exit(credential.getToken(GRAPH)))
              assert.strictEqual(error._tag, "CredentialUnavailableError")
              assert.include(error.message, hint)
              assert.strictEqual(requests.length, 0)
              assertNoSecret(error, CODE)
            }), extra)
      )
    }

    it.effect("an invalid scope", () =>
      withCredential(() => json(200, userToken("x", RT1)), (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken("two words")))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.strictEqual(requests.length, 0)
        })))
  })

  it.effect("claims bypass the cache and go with the refresh token; CAE adds CP1", () =>
    withCredential(fakeEntra(newState()), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(GRAPH, { enableCae: true })
        assert.deepStrictEqual(JSON.parse(requests[0]!.form.claims!), {
          access_token: { xms_cc: { values: ["CP1"] } }
        })
        const challenge = JSON.stringify({ access_token: { acrs: { essential: true, value: "c1" } } })
        const fresh = yield* credential.getToken(GRAPH, { enableCae: true, claims: challenge })
        assert.strictEqual(tokenValue(fresh), "at-2")
        assert.strictEqual(requests[1]!.form.grant_type, "refresh_token")
        assert.deepStrictEqual(JSON.parse(requests[1]!.form.claims!).access_token.acrs.value, "c1")
        assert.strictEqual(tokenValue(yield* credential.getToken(GRAPH, { enableCae: true })), "at-2")
        assert.strictEqual(requests.length, 2)
      })))

  it.effect("a background refresh uses the refresh token and never logs it", () => {
    const logs = captureLogs()
    const state = newState(true)
    return withCredential(fakeEntra(state), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(GRAPH)
        yield* TestClock.adjust("56 minutes")
        assert.strictEqual(tokenValue(yield* credential.getToken(GRAPH)), "at-1")
        yield* settle
        assert.strictEqual(requests.length, 2)
        assert.strictEqual(tokenValue(yield* credential.getToken(GRAPH)), "at-2")
        // a failing background refresh is logged without any secret
        state.valid.clear()
        yield* TestClock.adjust("56 minutes")
        yield* credential.getToken(GRAPH)
        yield* settle
        const exit = yield* Effect.exit(credential.getToken(VAULT))
        yield* Effect.logError("failed", exit)
        assert.isTrue(logs.lines.some((l) => l.includes("background token refresh failed")))
        for (const line of logs.lines) {
          for (const secret of [CODE, RT1, `${RT2}-2`, "at-1", "at-2", SECRET]) assert.notInclude(line, secret)
        }
      }), { clientSecret: Redacted.make(SECRET) }).pipe(Effect.provide(logs.layer))
  })

  it.effect("a token in another allowed tenant comes from the refresh token at that tenant's endpoint", () =>
    withCredential(fakeEntra(newState()), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(GRAPH)
        yield* credential.getToken(GRAPH, { tenantId: "other.onmicrosoft.com" })
        assert.strictEqual(requests[1]!.url.pathname, "/other.onmicrosoft.com/oauth2/v2.0/token")
        assert.strictEqual(requests[1]!.form.grant_type, "refresh_token")
      }), { additionallyAllowedTenants: ["*"] }))
  it.effect("user tokens are never written to a persistent TokenCache (its keys have no account)", () => {
    const saved: Array<string> = []
    const persistence = Layer.succeed(TokenCache.TokenCache, {
      load: () => Effect.succeed(Option.none()),
      save: (key) => Effect.sync(() => void saved.push(key))
    })
    const http = mockHttp(fakeEntra(newState()))
    return Effect.gen(function*() {
      yield* setNow
      yield* TokenCredential.getToken(GRAPH)
      yield* TokenCredential.getToken(VAULT)
      assert.strictEqual(http.requests.length, 2)
      assert.deepStrictEqual(saved, [])
    }).pipe(
      Effect.provide(
        AuthorizationCodeCredential.layer(options()).pipe(Layer.provide(Layer.merge(http.layer, persistence)))
      ),
      withEnv({})
    )
  })
})

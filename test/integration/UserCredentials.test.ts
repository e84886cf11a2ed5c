/**
 * The user credentials against a real third-party OAuth 2.0 server (oidc-provider on 127.0.0.1), through the real
 * Node HttpClient: a real authorization code obtained by driving sign-in and consent over HTTP, redeemed once, then
 * other scopes through its rotated refresh token; the device flow approved over HTTP; and the ways it goes wrong.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { AuthorizationCodeCredential, DeviceCodeCredential, TokenCredential } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { assertNoSecret, failureOf, withEnv } from "../support/helpers.js"
import type { UserFlowServer } from "../support/oidcUserFlows.js"
import { DEVICE_CLIENT, REDIRECT_URI, startUserFlowServer, WEB_CLIENT, WEB_SECRET } from "../support/oidcUserFlows.js"

const TENANT = "contoso.onmicrosoft.com"
const VERIFIER = "a-pkce-code-verifier-that-is-long-enough-0123456789"
const ALL_SCOPES = "openid profile offline_access api.read api.write"

const authCodeLayer = (server: UserFlowServer, code: string, redirectUri = REDIRECT_URI) =>
  AuthorizationCodeCredential.layer({
    tenantId: TENANT,
    clientId: WEB_CLIENT,
    clientSecret: Redacted.make(WEB_SECRET),
    authorizationCode: Redacted.make(code),
    codeVerifier: Redacted.make(VERIFIER),
    redirectUri,
    authorityHost: server.url
  }).pipe(Layer.provide(IdentityNode.layer))

const grants = (server: UserFlowServer, type: string) => server.tokenEvents.filter((e) => e.grantType === type)

describe("user credentials against oidc-provider (real OAuth server, real Node HttpClient)", () => {
  it.live("authorization code: one redemption for concurrent callers, then other scopes via rotated refresh tokens", () =>
    Effect.gen(function*() {
      const server = yield* startUserFlowServer({ tenant: TENANT })
      const code = yield* Effect.promise(() => server.authorize({ scope: ALL_SCOPES, codeVerifier: VERIFIER }))
      yield* Effect.gen(function*() {
        const tokens = yield* Effect.all(
          Array.from({ length: 20 }, () => TokenCredential.getToken("api.read")),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(new Set(tokens.map((t) => Redacted.value(t.token))).size, 1)
        assert.strictEqual(grants(server, "authorization_code").length, 1)
        assert.isUndefined(server.tokenEvents[0]!.error)
        const read = yield* Effect.promise(() => server.findAccessToken(Redacted.value(tokens[0]!.token)))
        assert.strictEqual(read?.accountId, "alice")
        assert.strictEqual(read?.clientId, WEB_CLIENT)
        assert.include(read!.scope.split(" "), "api.read")

        // other scopes through the refresh token, concurrently: the server rotates the refresh token on every use
        // and revokes the whole grant if a consumed one is presented again, so these must run one after another,
        // each with the refresh token the previous one returned
        const [write, both, profile] = yield* Effect.all([
          TokenCredential.getToken("api.write"),
          TokenCredential.getToken(["api.read", "api.write"]),
          TokenCredential.getToken("profile")
        ], { concurrency: "unbounded" })
        const issued = yield* Effect.promise(() => server.findAccessToken(Redacted.value(write.token)))
        assert.include(issued!.scope.split(" "), "api.write")
        assert.notInclude(issued!.scope.split(" "), "api.read")
        const bothIssued = yield* Effect.promise(() => server.findAccessToken(Redacted.value(both.token)))
        assert.includeMembers(bothIssued!.scope.split(" "), ["api.read", "api.write"])
        assert.isDefined(yield* Effect.promise(() => server.findAccessToken(Redacted.value(profile.token))))
        assert.strictEqual(grants(server, "refresh_token").length, 3)
        assert.isTrue(server.tokenEvents.every((e) => e.error === undefined))
        // cached: no new request
        yield* TokenCredential.getToken("api.write")
        assert.strictEqual(server.tokenEvents.length, 4)

        // the user's grant is revoked: the refresh token is dropped and the user must sign in again
        yield* Effect.promise(() => server.revokeAllGrants())
        const error = failureOf(yield* Effect.exit(TokenCredential.getToken("openid")))
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        assert.include(error.message, "must sign in again")
        assert.include(error.message, "invalid_grant")
        assertNoSecret(error, code, WEB_SECRET, Redacted.value(write.token), Redacted.value(both.token))
        // nothing left to try: no new request
        const again = failureOf(yield* Effect.exit(TokenCredential.getToken(["openid", "api.read"])))
        assert.include(again.message, "must sign in again")
        assert.strictEqual(server.tokenEvents.length, 5)
      }).pipe(Effect.provide(authCodeLayer(server, code)))
    }).pipe(Effect.scoped, withEnv({})))

  it.live("a wrong redirect URI is a typed error, and the code is not sent again", () =>
    Effect.gen(function*() {
      const server = yield* startUserFlowServer({ tenant: TENANT })
      const code = yield* Effect.promise(() => server.authorize({ scope: ALL_SCOPES, codeVerifier: VERIFIER }))
      yield* Effect.gen(function*() {
        const error = failureOf(yield* Effect.exit(TokenCredential.getToken("api.read")))
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        if (error._tag !== "ClientAuthenticationError") return
        assert.strictEqual(error.error, "invalid_grant")
        assert.strictEqual(error.status, 400)
        assert.include(error.message, "redirectUri")
        assertNoSecret(error, code, WEB_SECRET)
        const later = failureOf(yield* Effect.exit(TokenCredential.getToken("api.read")))
        assert.include(later.message, "must sign in again")
        assert.strictEqual(server.tokenEvents.length, 1)
      }).pipe(Effect.provide(authCodeLayer(server, code, "http://127.0.0.1/other/callback")))
    }).pipe(Effect.scoped, withEnv({})))

  it.live("a reused code is refused, and the server revokes what the first redemption gave", () =>
    Effect.gen(function*() {
      const server = yield* startUserFlowServer({ tenant: TENANT })
      const code = yield* Effect.promise(() => server.authorize({ scope: ALL_SCOPES, codeVerifier: VERIFIER }))
      const firstCredential = yield* Layer.build(authCodeLayer(server, code)).pipe(
        Effect.map(Context.get(TokenCredential.TokenCredential))
      )
      yield* firstCredential.getToken("api.read")
      // a second credential (another process, say) with the same code
      const reused = failureOf(
        yield* Effect.exit(TokenCredential.getToken("api.read").pipe(Effect.provide(authCodeLayer(server, code))))
      )
      assert.strictEqual(reused._tag, "ClientAuthenticationError")
      assert.include(reused.message, "invalid_grant")
      assert.include(reused.message, "single-use")
      assertNoSecret(reused, code, WEB_SECRET)
      // oidc-provider revoked the grant of the replayed code: the first credential's refresh token is now dead
      const revoked = failureOf(yield* Effect.exit(firstCredential.getToken("api.write")))
      assert.include(revoked.message, "must sign in again")
      assert.deepStrictEqual(server.tokenEvents.map((e) => [e.grantType, e.error]), [
        ["authorization_code", undefined],
        ["authorization_code", "invalid_grant"],
        ["refresh_token", "invalid_grant"]
      ])
    }).pipe(Effect.scoped, withEnv({})))

  describe("device code (polling under TestClock, the server and HTTP for real)", () => {
    /** Lets real I/O run until the polling fiber is asleep on the TestClock. */
    const untilSleeping = Effect.gen(function*() {
      for (let i = 0; i < 20_000; i++) {
        if ((yield* TestClock.sleeps()).length > 0) return
        yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      }
      return yield* Effect.dieMessage("the credential never started waiting")
    })

    const deviceLayer = (server: UserFlowServer, prompted: Deferred.Deferred<DeviceCodeCredential.DeviceCodeInfo>) =>
      DeviceCodeCredential.layer({
        tenantId: TENANT,
        clientId: DEVICE_CLIENT,
        authorityHost: server.url,
        prompt: (info) => Deferred.succeed(prompted, info)
      }).pipe(Layer.provide(IdentityNode.layer))

    it.effect("pending, approved over HTTP, then a second scope through the refresh token", () =>
      Effect.gen(function*() {
        const server = yield* startUserFlowServer({ tenant: TENANT })
        const prompted = yield* Deferred.make<DeviceCodeCredential.DeviceCodeInfo>()
        const credential = yield* Layer.build(deviceLayer(server, prompted)).pipe(
          Effect.map(Context.get(TokenCredential.TokenCredential))
        )
        const fiber = yield* Effect.fork(credential.getToken(["api.read", "api.write"]))
        const info = yield* Deferred.await(prompted)
        assert.strictEqual(info.verificationUri, `${server.url}/device`)
        assert.include(info.message, info.userCode)
        // first poll after the default 5 s: the user has not approved yet
        yield* untilSleeping
        yield* TestClock.adjust("5 seconds")
        yield* Effect.promise(() => server.tokenRequestsHandled(1))
        assert.deepStrictEqual(server.tokenEvents[0], {
          grantType: DeviceCodeCredential.grantType,
          error: "authorization_pending"
        })
        // the user enters the code on another device
        yield* Effect.promise(() => server.approveDeviceCode(info.userCode))
        yield* untilSleeping
        yield* TestClock.adjust("5 seconds")
        const token = yield* Fiber.join(fiber)
        const issued = yield* Effect.promise(() => server.findAccessToken(Redacted.value(token.token)))
        assert.strictEqual(issued?.accountId, "alice")
        assert.includeMembers(issued!.scope.split(" "), ["api.read", "api.write"])
        // narrower scopes: the refresh token (rotated by the server for this public client), no new prompt
        const write = yield* credential.getToken("api.write")
        const writeIssued = yield* Effect.promise(() => server.findAccessToken(Redacted.value(write.token)))
        assert.include(writeIssued!.scope.split(" "), "api.write")
        assert.notInclude(writeIssued!.scope.split(" "), "api.read")
        const read = yield* credential.getToken("api.read")
        const readIssued = yield* Effect.promise(() => server.findAccessToken(Redacted.value(read.token)))
        assert.include(readIssued!.scope.split(" "), "api.read")
        assert.notInclude(readIssued!.scope.split(" "), "api.write")
        // a scope the user never consented to: the server refuses it, typed
        const refused = failureOf(yield* Effect.exit(credential.getToken("api.admin")))
        assert.strictEqual(refused._tag, "ClientAuthenticationError")
        assert.deepStrictEqual(server.tokenEvents.map((e) => [e.grantType, e.error]), [
          [DeviceCodeCredential.grantType, "authorization_pending"],
          [DeviceCodeCredential.grantType, undefined],
          ["refresh_token", undefined],
          ["refresh_token", undefined],
          ["refresh_token", "invalid_scope"]
        ])
      }).pipe(Effect.scoped, withEnv({})))

    it.effect("a declined sign-in ends polling with a typed error", () =>
      Effect.gen(function*() {
        const server = yield* startUserFlowServer({ tenant: TENANT })
        server.decision = "deny"
        const prompted = yield* Deferred.make<DeviceCodeCredential.DeviceCodeInfo>()
        const fiber = yield* Effect.fork(
          Effect.exit(TokenCredential.getToken("api.read").pipe(Effect.provide(deviceLayer(server, prompted))))
        )
        const info = yield* Deferred.await(prompted)
        yield* Effect.promise(() => server.approveDeviceCode(info.userCode))
        yield* untilSleeping
        yield* TestClock.adjust("5 seconds")
        const error = failureOf(yield* Fiber.join(fiber))
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        assert.include(error.message, "declined")
        assert.strictEqual(server.tokenEvents.length, 1)
        assert.strictEqual(server.tokenEvents[0]!.error, "access_denied")
      }).pipe(Effect.scoped, withEnv({})))
  })
})

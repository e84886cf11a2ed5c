import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { ClientSecretCredential, TokenCredential } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { withEnv } from "../support/helpers.js"
import { listen, sendJson } from "../support/loopbackServer.js"

const SECRET = "integration-secret-value"
const TENANT = "contoso.onmicrosoft.com"
const SCOPE = "https://management.azure.com/.default"

const credentialFor = (authorityHost: string, secret = SECRET) =>
  ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: "app-1",
    clientSecret: Redacted.make(secret),
    authorityHost,
    retryPolicy: {
      maxRetries: 2,
      baseDelayMillis: 1,
      maxDelayMillis: 5,
      maxElapsedMillis: 5_000,
      attemptTimeoutMillis: 5_000,
      retryStatus: (s) => s >= 500
    }
  }).pipe(Layer.provide(IdentityNode.layer))

describe("ClientSecretCredential against a loopback server (real Node HttpClient)", () => {
  it.live("gets, caches and shares a token", () =>
    Effect.gen(function*() {
      const server = yield* listen((req, res) => {
        if (req.url.pathname !== `/${TENANT}/oauth2/v2.0/token` || req.form.client_secret !== SECRET) {
          return sendJson(res, 401, { error: "invalid_client", error_codes: [7000215] })
        }
        setTimeout(
          () => sendJson(res, 200, { token_type: "Bearer", expires_in: "3599", access_token: "real-token" }),
          20
        )
      })
      yield* Effect.gen(function*() {
        const tokens = yield* Effect.all(
          Array.from({ length: 100 }, () => TokenCredential.getToken(SCOPE)),
          { concurrency: "unbounded" }
        )
        assert.isTrue(tokens.every((t) => Redacted.value(t.token) === "real-token"))
        assert.strictEqual(server.requests.length, 1)
        const r = server.requests[0]!
        assert.strictEqual(r.method, "POST")
        assert.strictEqual(r.form.grant_type, "client_credentials")
        assert.strictEqual(r.form.scope, SCOPE)
        assert.strictEqual(r.headers["content-type"], "application/x-www-form-urlencoded")
        yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual(server.requests.length, 1)
      }).pipe(Effect.provide(credentialFor(server.url)))
    }).pipe(Effect.scoped, withEnv({})))

  it.live("a wrong secret is a ClientAuthenticationError carrying Entra's fields", () =>
    Effect.gen(function*() {
      const server = yield* listen((_, res) =>
        sendJson(res, 401, {
          error: "invalid_client",
          error_description: "AADSTS7000215: Invalid client secret provided.",
          error_codes: [7000215],
          correlation_id: "c-1"
        })
      )
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(
        Effect.provide(credentialFor(server.url, "wrong-secret"))
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") return assert.fail("expected a typed failure")
      const error = exit.cause.error
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, "AADSTS7000215")
      assert.notInclude(JSON.stringify(error) + error.message, "wrong-secret")
    }).pipe(Effect.scoped, withEnv({})))

  it.live("a connection reset by the server is unavailable after retries", () =>
    Effect.gen(function*() {
      const server = yield* listen((_, res) => res.socket?.destroy())
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(Effect.provide(credentialFor(server.url)))
      if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") return assert.fail("expected a typed failure")
      assert.strictEqual(exit.cause.error._tag, "CredentialUnavailableError")
      assert.include(exit.cause.error.message, "no answer from the token endpoint")
      assert.strictEqual(server.requests.length, 3)
    }).pipe(Effect.scoped, withEnv({})))

  it.live("a refused connection is unavailable", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(
        Effect.provide(credentialFor("http://127.0.0.1:1"))
      )
      if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") return assert.fail("expected a typed failure")
      assert.strictEqual(exit.cause.error._tag, "CredentialUnavailableError")
    }).pipe(withEnv({})))

  it.live("an HTML error page after retries is a typed error naming the page", () =>
    Effect.gen(function*() {
      const server = yield* listen((_, res) => {
        res.writeHead(503, { "content-type": "text/html" })
        res.end("<html><head><title>Service Unavailable</title></head></html>")
      })
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(Effect.provide(credentialFor(server.url)))
      if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") return assert.fail("expected a typed failure")
      assert.strictEqual(exit.cause.error._tag, "ClientAuthenticationError")
      assert.include(exit.cause.error.message, "Service Unavailable")
      assert.strictEqual(server.requests.length, 3)
    }).pipe(Effect.scoped, withEnv({})))
})

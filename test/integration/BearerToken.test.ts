/**
 * The BearerToken middleware on the real Node `HttpClient`, calling a fake resource API served over https by a test
 * CA (trusted through an `https.Agent` given to `NodeHttpClient.layerWithoutAgent`), with tokens from this library's
 * ClientSecretCredential talking to a loopback token server.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as http from "node:http"
import { BearerToken, ClientSecretCredential, TokenCredential } from "../../src/index.js"
import { envLayer } from "../support/helpers.js"
import { listenHttps, testTls } from "../support/httpsServer.js"
import type { ServerRequest } from "../support/loopbackServer.js"
import { listen, sendJson } from "../support/loopbackServer.js"

const TENANT = "contoso.onmicrosoft.com"
const SECRET = "middleware-secret-value"
const SCOPE = "https://management.azure.com/.default"
const CLAIMS = `{"access_token":{"nbf":{"essential":true,"value":"1764230400"}}}`
const CAE = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", ` +
  `error="insufficient_claims", claims="${Buffer.from(CLAIMS).toString("base64")}"`

const tokenServer = listen((req, res) => {
  if (req.form.client_secret !== SECRET) return sendJson(res, 401, { error: "invalid_client" })
  const claims = req.form.claims === undefined ? {} : JSON.parse(req.form.claims)
  const token = claims.access_token?.nbf === undefined ? "arm-token" : "arm-token-after-cae"
  sendJson(res, 200, { token_type: "Bearer", expires_in: 3599, access_token: token })
})

/** Node HttpClient trusting the test CA, and the credential (which uses the same client for its token requests). */
const environment = (authorityHost: string, caPem: string) => {
  const client = NodeHttpClient.layerWithoutAgent.pipe(Layer.provide(NodeHttpClient.makeAgentLayer({ ca: caPem })))
  const credential = ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: "app-1",
    clientSecret: Redacted.make(SECRET),
    authorityHost,
    additionallyAllowedTenants: []
  }).pipe(Layer.provide(client))
  return Layer.mergeAll(client, credential).pipe(Layer.provide(envLayer({})))
}

const api = (answer: (req: ServerRequest, res: http.ServerResponse) => void) =>
  Effect.flatMap(testTls(), ({ leaf }) => listenHttps(leaf, answer))

const authenticated = Effect.map(
  HttpClient.HttpClient,
  (client) => client.pipe(BearerToken.authenticate({ scopes: SCOPE }))
)

describe("BearerToken on the Node HttpClient", () => {
  it.live("a CAE challenge: one retry with a token carrying the decoded claims", () =>
    Effect.gen(function*() {
      const { ca } = yield* testTls()
      const tokens = yield* tokenServer
      const resource = yield* api((req, res) => {
        if (req.headers.authorization === "Bearer arm-token-after-cae") return sendJson(res, 200, { value: [] })
        res.writeHead(401, { "www-authenticate": CAE })
        res.end()
      })
      yield* Effect.gen(function*() {
        const client = yield* authenticated
        const response = yield* client.get(`${resource.url}/subscriptions?api-version=2022-12-01`)
        assert.strictEqual(response.status, 200)
        assert.deepStrictEqual(yield* response.json, { value: [] })
      }).pipe(Effect.provide(environment(tokens.url, ca.certPem)))
      assert.deepStrictEqual(resource.requests.map((r) => r.headers.authorization), [
        "Bearer arm-token",
        "Bearer arm-token-after-cae"
      ])
      assert.strictEqual(tokens.requests.length, 2)
      const claims = JSON.parse(tokens.requests[1]!.form.claims!)
      assert.deepStrictEqual(claims.access_token.nbf, { essential: true, value: "1764230400" })
      assert.deepStrictEqual(claims.access_token.xms_cc.values, ["CP1"])
    }).pipe(Effect.scoped))

  it.live("a second 401 is returned as is, after exactly two requests", () =>
    Effect.gen(function*() {
      const { ca } = yield* testTls()
      const tokens = yield* tokenServer
      const resource = yield* api((_, res) => {
        res.writeHead(401, { "www-authenticate": CAE, "content-type": "application/json" })
        res.end(JSON.stringify({ error: { code: "InvalidAuthenticationToken" } }))
      })
      const response = yield* Effect.flatMap(authenticated, (client) => client.get(`${resource.url}/x`)).pipe(
        Effect.provide(environment(tokens.url, ca.certPem))
      )
      assert.strictEqual(response.status, 401)
      assert.deepStrictEqual(yield* response.json, { error: { code: "InvalidAuthenticationToken" } })
      assert.strictEqual(resource.requests.length, 2)
    }).pipe(Effect.scoped))

  it.live("the token never goes to an http: URL: the server sees nothing, the caller a typed error", () =>
    Effect.gen(function*() {
      const { ca } = yield* testTls()
      const tokens = yield* tokenServer
      const plain = yield* listen((_, res) => sendJson(res, 200, {}))
      const exit = yield* Effect.exit(
        Effect.flatMap(authenticated, (client) => client.get(`${plain.url}/subscriptions`)).pipe(
          Effect.provide(environment(tokens.url, ca.certPem))
        )
      )
      if (Exit.isSuccess(exit)) return assert.fail("expected a failure")
      const error = Option.getOrThrow(Cause.failureOption(exit.cause))
      assert.strictEqual(error._tag, "InsecureUrlError")
      assert.include(error.message, `${plain.url}/subscriptions`)
      assert.strictEqual(plain.requests.length, 0)
      assert.strictEqual(tokens.requests.length, 0)
    }).pipe(Effect.scoped))

  it.live("the same token serves many requests: one token request", () =>
    Effect.gen(function*() {
      const { ca } = yield* testTls()
      const tokens = yield* tokenServer
      const resource = yield* api((_, res) => sendJson(res, 200, {}))
      yield* Effect.gen(function*() {
        const client = yield* authenticated
        yield* Effect.all(Array.from({ length: 20 }, () => client.get(`${resource.url}/r`)), { concurrency: 10 })
        const credential = yield* TokenCredential.TokenCredential
        assert.strictEqual(credential.name, "ClientSecretCredential")
      }).pipe(Effect.provide(environment(tokens.url, ca.certPem)))
      assert.strictEqual(resource.requests.length, 20)
      assert.isTrue(resource.requests.every((r) => r.headers.authorization === "Bearer arm-token"))
      assert.strictEqual(tokens.requests.length, 1)
    }).pipe(Effect.scoped))
})

/**
 * ManagedIdentityCredential against real servers on 127.0.0.1 started by each test, with the real Node HttpClient,
 * FileSystem and PinnedHttpClient (`src/node.ts`). Every test overrides the Arc agent paths, so nothing outside a
 * temporary directory is ever read, and nothing but loopback is contacted.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs/promises"
import type * as http from "node:http"
import * as https from "node:https"
import type * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { ManagedIdentityCredential, TokenCredential } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { failureOf, withEnv } from "../support/helpers.js"
import type { ServerRequest } from "../support/loopbackServer.js"
import { listen, sendJson } from "../support/loopbackServer.js"
import type { Issued } from "../support/tls.js"
import { makeSelfSigned } from "../support/tls.js"

const SCOPE = "https://management.azure.com/.default"
const RESOURCE = "https://management.azure.com"
const HEADER_SECRET = "integration-identity-header-3c2b"
const ARC_KEY = "integration-arc-key-1a0f"

const nowSeconds = () => Math.floor(Date.now() / 1000)
const tokenBody = (token: string) => ({
  access_token: token,
  expires_in: "86399",
  expires_on: String(nowSeconds() + 86_399),
  resource: RESOURCE,
  token_type: "Bearer"
})

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "mi-test-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

/** Runs `f` with a credential over the real Node services; Arc paths always point into `dir`. */
const withCredential = <A, E>(
  dir: string,
  env: Record<string, string>,
  options: ManagedIdentityCredential.Options,
  f: Effect.Effect<A, E, TokenCredential.TokenCredential>
) =>
  f.pipe(
    Effect.provide(
      ManagedIdentityCredential.layer({
        azureArc: { himdsPaths: [path.join(dir, "no-himds")], keyDirectory: path.join(dir, "tokens") },
        retryPolicy: {
          maxRetries: 1,
          baseDelayMillis: 5,
          maxDelayMillis: 10,
          maxElapsedMillis: 2000,
          attemptTimeoutMillis: 5000,
          retryStatus: (s) => s >= 500
        },
        ...options
      }).pipe(Layer.provide(IdentityNode.layer))
    ),
    withEnv(env)
  )

/** An https server on 127.0.0.1 serving `certificate`. */
const listenHttps = (
  certificate: Issued,
  handler: (request: ServerRequest, res: http.ServerResponse) => void
): Effect.Effect<{ readonly url: string; readonly requests: Array<ServerRequest> }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: https.Server; url: string; requests: Array<ServerRequest> }>((resume) => {
      const requests: Array<ServerRequest> = []
      const server = https.createServer({ cert: certificate.certPem, key: certificate.keyPem }, (req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          const request: ServerRequest = {
            method: req.method ?? "GET",
            url: new URL(req.url ?? "/", "https://127.0.0.1"),
            headers: req.headers,
            body,
            form: {}
          }
          requests.push(request)
          handler(request, res)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resume(Effect.succeed({ server, url: `https://127.0.0.1:${port}`, requests }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ requests, url }) => ({ url, requests })))

describe("ManagedIdentityCredential against loopback servers (real Node clients)", () => {
  it.live("IMDS: the exact request; 100 concurrent cold calls share one", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* listen((_, res) => setTimeout(() => sendJson(res, 200, tokenBody("imds-real")), 20))
      yield* withCredential(
        dir,
        {},
        { imdsEndpoint: server.url },
        Effect.gen(function*() {
          const tokens = yield* Effect.all(
            Array.from({ length: 100 }, () => TokenCredential.getToken(SCOPE)),
            { concurrency: "unbounded" }
          )
          assert.isTrue(tokens.every((t) => Redacted.value(t.token) === "imds-real"))
          assert.strictEqual(server.requests.length, 1)
          const r = server.requests[0]!
          assert.strictEqual(r.method, "GET")
          assert.strictEqual(r.url.pathname, "/metadata/identity/oauth2/token")
          assert.deepStrictEqual(Object.fromEntries(r.url.searchParams), {
            "api-version": "2018-02-01",
            resource: RESOURCE
          })
          assert.strictEqual(r.headers["metadata"], "true")
        })
      )
    }).pipe(Effect.scoped))

  it.live("IMDS through AZURE_POD_IDENTITY_AUTHORITY_HOST, user-assigned by resource id", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* listen((_, res) => sendJson(res, 200, tokenBody("pod-identity")))
      const token = yield* withCredential(
        dir,
        { AZURE_POD_IDENTITY_AUTHORITY_HOST: server.url },
        {
          resourceId: "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u"
        },
        TokenCredential.getToken(SCOPE)
      )
      assert.strictEqual(Redacted.value(token.token), "pod-identity")
      assert.strictEqual(
        server.requests[0]!.url.searchParams.get("msi_res_id"),
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u"
      )
    }).pipe(Effect.scoped))

  it.live("IMDS probe: a request without Metadata first; a silent endpoint is unavailable fast", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const up = yield* listen((req, res) =>
        req.headers["metadata"] === "true"
          ? sendJson(res, 200, tokenBody("probed"))
          : sendJson(res, 400, {
            error: "bad_request_102",
            error_description: "Required metadata header not specified"
          })
      )
      const token = yield* withCredential(
        dir,
        {},
        { imdsEndpoint: up.url, probe: true },
        TokenCredential.getToken(SCOPE)
      )
      assert.strictEqual(Redacted.value(token.token), "probed")
      assert.strictEqual(up.requests.length, 2)
      assert.isUndefined(up.requests[0]!.headers["metadata"])
      assert.strictEqual(up.requests[0]!.url.search, "")

      // accepts connections, never answers
      const silent = yield* listen(() => {})
      const started = Date.now()
      const exit = yield* withCredential(
        dir,
        {},
        { imdsEndpoint: silent.url, probe: true, probeTimeoutMillis: 300 },
        Effect.exit(TokenCredential.getToken(SCOPE))
      )
      const elapsed = Date.now() - started
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "within 300 ms")
      assert.isBelow(elapsed, 2000)
      // one probe request, never retried
      assert.strictEqual(silent.requests.length, 1)
    }).pipe(Effect.scoped))

  it.live("App Service 2019: X-IDENTITY-HEADER and the 2019-08-01 query", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* listen((req, res) =>
        req.headers["x-identity-header"] === HEADER_SECRET
          ? sendJson(res, 200, { ...tokenBody("app-service"), expires_in: undefined })
          : sendJson(res, 401, { statusCode: 401, message: "bad header" })
      )
      const token = yield* withCredential(
        dir,
        { IDENTITY_ENDPOINT: `${server.url}/msi/token`, IDENTITY_HEADER: HEADER_SECRET },
        { clientId: "uami-client" },
        TokenCredential.getToken(SCOPE)
      )
      assert.strictEqual(Redacted.value(token.token), "app-service")
      const r = server.requests[0]!
      assert.strictEqual(r.url.pathname, "/msi/token")
      assert.deepStrictEqual(Object.fromEntries(r.url.searchParams), {
        "api-version": "2019-08-01",
        resource: RESOURCE,
        client_id: "uami-client"
      })
    }).pipe(Effect.scoped))

  it.live("App Service 2017: secret header and a Windows date string", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* listen((req, res) =>
        req.headers["secret"] === HEADER_SECRET
          ? sendJson(res, 200, { access_token: "legacy", expires_on: "12/31/2099 11:59:59 PM +00:00" })
          : sendJson(res, 401, {})
      )
      const token = yield* withCredential(
        dir,
        { MSI_ENDPOINT: `${server.url}/MSI/token/`, MSI_SECRET: HEADER_SECRET },
        {},
        TokenCredential.getToken(SCOPE)
      )
      assert.strictEqual(Redacted.value(token.token), "legacy")
      assert.strictEqual(token.expiresOn.epochMillis, Date.UTC(2099, 11, 31, 23, 59, 59))
      assert.strictEqual(server.requests[0]!.url.searchParams.get("api-version"), "2017-09-01")
    }).pipe(Effect.scoped))

  it.live("Azure ML: clientid from DEFAULT_IDENTITY_CLIENT_ID, epoch expires_on", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* listen((_, res) =>
        sendJson(res, 200, { access_token: "ml", expires_on: nowSeconds() + 3600 })
      )
      yield* withCredential(
        dir,
        { MSI_ENDPOINT: `${server.url}/token`, MSI_SECRET: HEADER_SECRET, DEFAULT_IDENTITY_CLIENT_ID: "ml-default" },
        {},
        TokenCredential.getToken(SCOPE)
      )
      const r = server.requests[0]!
      assert.strictEqual(r.url.searchParams.get("clientid"), "ml-default")
      assert.strictEqual(r.headers["metadata"], "true")
      assert.strictEqual(r.headers["secret"], HEADER_SECRET)
    }).pipe(Effect.scoped))

  it.live("Cloud Shell: a form POST", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* listen((_, res) => sendJson(res, 200, tokenBody("cloud-shell")))
      const token = yield* withCredential(
        dir,
        { MSI_ENDPOINT: `${server.url}/oauth2/token` },
        {},
        TokenCredential.getToken(SCOPE)
      )
      assert.strictEqual(Redacted.value(token.token), "cloud-shell")
      const r = server.requests[0]!
      assert.strictEqual(r.method, "POST")
      assert.deepStrictEqual(r.form, { resource: RESOURCE })
      assert.strictEqual(r.headers["metadata"], "true")
    }).pipe(Effect.scoped))

  it.live("Azure Arc: the challenge, a real key file, then Basic authorization", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const tokens = path.join(dir, "tokens")
      yield* Effect.promise(() => fs.mkdir(tokens))
      const keyFile = path.join(tokens, "f00d.key")
      yield* Effect.promise(() => fs.writeFile(keyFile, ARC_KEY))
      const server = yield* listen((req, res) => {
        if (req.headers["authorization"] === undefined) {
          res.writeHead(401, { "www-authenticate": `Basic realm=${keyFile}` })
          return res.end()
        }
        return req.headers["authorization"] === `Basic ${ARC_KEY}`
          ? sendJson(res, 200, tokenBody("arc-real"))
          : sendJson(res, 401, { error: "bad key" })
      })
      const token = yield* withCredential(
        dir,
        { IDENTITY_ENDPOINT: `${server.url}/metadata/identity/oauth2/token`, IMDS_ENDPOINT: server.url },
        {},
        TokenCredential.getToken(SCOPE)
      )
      assert.strictEqual(Redacted.value(token.token), "arc-real")
      assert.strictEqual(server.requests.length, 2)
      assert.strictEqual(server.requests[1]!.url.searchParams.get("api-version"), "2020-06-01")

      // a key file outside the token directory is refused, and never sent
      const outside = path.join(dir, "f00d.key")
      yield* Effect.promise(() => fs.writeFile(outside, ARC_KEY))
      const rogue = yield* listen((_, res) => {
        res.writeHead(401, { "www-authenticate": `Basic realm=${outside}` })
        res.end()
      })
      const error = failureOf(
        yield* withCredential(
          dir,
          { IDENTITY_ENDPOINT: `${rogue.url}/metadata/identity/oauth2/token`, IMDS_ENDPOINT: rogue.url },
          {},
          Effect.exit(TokenCredential.getToken(SCOPE))
        )
      )
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, "not in the Azure Arc agent's token directory")
      assert.notInclude(error.message + JSON.stringify(error), ARC_KEY)
      assert.strictEqual(rogue.requests.length, 1)
    }).pipe(Effect.scoped))

  it.live("Service Fabric over https: a self-signed certificate pinned by thumbprint", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const certificate = yield* Effect.promise(() =>
        makeSelfSigned({ commonName: "service-fabric-test", hosts: ["127.0.0.1"] })
      )
      const server = yield* listenHttps(certificate, (req, res) =>
        req.headers["secret"] === HEADER_SECRET
          ? sendJson(res, 200, { token_type: "Bearer", access_token: "fabric", expires_on: nowSeconds() + 3600 })
          : sendJson(res, 401, { error: { code: "SecretHeaderNotFound", message: "Secret is not found" } }))
      const env = {
        IDENTITY_ENDPOINT: `${server.url}/metadata/identity/oauth2/token`,
        IDENTITY_HEADER: HEADER_SECRET,
        IDENTITY_SERVER_THUMBPRINT: certificate.sha1Hex
      }
      const token = yield* withCredential(dir, env, {}, TokenCredential.getToken(SCOPE))
      assert.strictEqual(Redacted.value(token.token), "fabric")
      const r = server.requests[0]!
      assert.strictEqual(r.method, "GET")
      assert.deepStrictEqual(Object.fromEntries(r.url.searchParams), {
        "api-version": "2019-07-01-preview",
        resource: RESOURCE
      })

      // a SHA-256 pin, written with colons, works too
      const sha256 = certificate.sha256Hex.match(/../g)!.join(":")
      const again = yield* withCredential(
        dir,
        { ...env, IDENTITY_SERVER_THUMBPRINT: sha256 },
        {},
        TokenCredential.getToken(SCOPE)
      )
      assert.strictEqual(Redacted.value(again.token), "fabric")
      assert.strictEqual(server.requests.length, 2)

      // another certificate's thumbprint: refused before anything is sent
      const other = yield* Effect.promise(() => makeSelfSigned({ commonName: "impostor", hosts: ["127.0.0.1"] }))
      const error = failureOf(
        yield* withCredential(
          dir,
          { ...env, IDENTITY_SERVER_THUMBPRINT: other.sha1Hex },
          {},
          Effect.exit(TokenCredential.getToken(SCOPE))
        )
      )
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, "not IDENTITY_SERVER_THUMBPRINT")
      assert.notInclude(error.message + JSON.stringify(error), HEADER_SECRET)
      assert.strictEqual(server.requests.length, 2)

      // and the ordinary client does not trust the self-signed certificate at all
      const plain = failureOf(
        yield* withCredential(
          dir,
          { ...env, IDENTITY_SERVER_THUMBPRINT: "" },
          {},
          Effect.exit(TokenCredential.getToken(SCOPE))
        )
      )
      assert.strictEqual(plain._tag, "CredentialUnavailableError")
      assert.strictEqual(server.requests.length, 2)
    }).pipe(Effect.scoped))

  it.live("token exchange: the federated token file is the client assertion", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const tokenFile = path.join(dir, "azure-identity-token")
      yield* Effect.promise(() => fs.writeFile(tokenFile, "federated.jwt.value\n"))
      const server = yield* listen((req, res) =>
        req.form.client_assertion === "federated.jwt.value"
          ? sendJson(res, 200, { token_type: "Bearer", access_token: "exchanged-real", expires_in: 3599 })
          : sendJson(res, 400, { error: "invalid_client" })
      )
      const token = yield* withCredential(
        dir,
        {
          AZURE_FEDERATED_TOKEN_FILE: tokenFile,
          AZURE_TENANT_ID: "tenant-x",
          AZURE_CLIENT_ID: "client-x",
          AZURE_AUTHORITY_HOST: server.url
        },
        {},
        TokenCredential.getToken(SCOPE)
      )
      assert.strictEqual(Redacted.value(token.token), "exchanged-real")
      const r = server.requests[0]!
      assert.strictEqual(r.url.pathname, "/tenant-x/oauth2/v2.0/token")
      assert.strictEqual(r.form.client_id, "client-x")
      assert.strictEqual(r.form.client_assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    }).pipe(Effect.scoped))
})

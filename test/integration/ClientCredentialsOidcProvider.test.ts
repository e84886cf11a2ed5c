/**
 * Client-credentials credentials against a real third-party OAuth 2.0 server: oidc-provider on 127.0.0.1, with the
 * real Node HttpClient and FileSystem (`src/node.ts`). The server verifies every assertion itself (signature with the
 * registered public key, `aud` = its token endpoint URL, `iss` = client id, `exp`, and `jti` never seen before).
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { decodeJwt, decodeProtectedHeader, SignJWT } from "jose"
import { createPrivateKey, createPublicKey, randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import {
  CertificateCredential,
  ClientAssertionCredential,
  ClientSecretCredential,
  TokenCache,
  TokenCredential,
  WorkloadIdentityCredential
} from "../../src/index.js"
import type { RetryPolicy } from "../../src/internal/http.js"
import * as IdentityNode from "../../src/node.js"
import { failureOf, withEnv } from "../support/helpers.js"
import type { OidcServer } from "../support/oidcProvider.js"
import { startOidcProvider } from "../support/oidcProvider.js"
import { makeCertificateAuthority, makeSelfSigned, toEncryptedPkcs8 } from "../support/tls.js"

const TENANT = "contoso.onmicrosoft.com"
// the Entra app-only scope shape; test/support/oidcProvider.ts maps it to the resource `api://effect-azure-identity`
const RESOURCE = "api://effect-azure-identity"
const SCOPE = `${RESOURCE}/.default`
const OTHER_SCOPE = "api://other-api/.default"
const SECRET = "client-secret-value-for-oidc-provider-0123456789"
const PASSWORD = "pem-password-1"

const ca = await makeCertificateAuthority()
const certApp = await makeSelfSigned({ commonName: "cert-app" })
const chainApp = await ca.issue({ commonName: "chain-app" })
const assertionApp = await makeSelfSigned({ commonName: "assertion-app" })
const stranger = await makeSelfSigned({ commonName: "not-registered" })
const jwkOf = (certPem: string) => createPublicKey(certPem).export({ format: "jwk" }) as Record<string, unknown>

const fastRetry: RetryPolicy = {
  maxRetries: 1,
  baseDelayMillis: 1,
  maxDelayMillis: 5,
  maxElapsedMillis: 5_000,
  attemptTimeoutMillis: 10_000,
  retryStatus: (s) => s >= 500
}

const startServer = startOidcProvider({
  tenant: TENANT,
  clients: [
    { client_id: "cert-app", token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [jwkOf(certApp.certPem)] } },
    {
      client_id: "chain-app",
      token_endpoint_auth_method: "private_key_jwt",
      // the server insists on RS256 for this client
      token_endpoint_auth_signing_alg: "RS256",
      jwks: { keys: [jwkOf(chainApp.certPem)] }
    },
    {
      client_id: "assertion-app",
      token_endpoint_auth_method: "private_key_jwt",
      jwks: { keys: [jwkOf(assertionApp.certPem)] }
    },
    { client_id: "secret-app", token_endpoint_auth_method: "client_secret_post", client_secret: SECRET }
  ]
})

/** A temp directory removed when the scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(nodePath.join(os.tmpdir(), "eai-oidc-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Provides a credential layer over the real Node services. */
const using =
  (credential: Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem>) =>
  <A, E>(effect: Effect.Effect<A, E, TokenCredential.TokenCredential>): Effect.Effect<A, E> =>
    Effect.provide(effect, credential.pipe(Layer.provide(IdentityNode.layer)))

const issued = (server: OidcServer, token: { token: Redacted.Redacted<string> }) =>
  Effect.promise(() => server.findToken(Redacted.value(token.token)))

describe("client credentials against oidc-provider (real Node HttpClient)", () => {
  it.live("CertificateCredential (PS256, x5t#S256, PEM file) gets a token the server issued to the app", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const dir = yield* tempDir
      const pemPath = nodePath.join(dir, "cert-app.pem")
      fs.writeFileSync(pemPath, certApp.certPem + certApp.keyPem)
      yield* Effect.gen(function*() {
        const token = yield* TokenCredential.getToken(SCOPE)
        assert.deepStrictEqual(yield* issued(server, token), {
          clientId: "cert-app",
          scope: SCOPE,
          audience: RESOURCE,
          kind: "ClientCredentials"
        })
        assert.strictEqual(server.requests.length, 1)
        const form = server.requests[0]!.form
        assert.strictEqual(server.requests[0]!.path, `/${TENANT}/oauth2/v2.0/token`)
        assert.strictEqual(form.client_assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        assert.strictEqual(decodeProtectedHeader(form.client_assertion!).alg, "PS256")
        assert.strictEqual(decodeJwt(form.client_assertion!).aud, server.tokenEndpoint)
        // cached
        yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual(server.requests.length, 1)
        // another scope: a new request with a fresh assertion (the server refuses a replayed jti)
        const other = yield* TokenCredential.getToken(OTHER_SCOPE)
        assert.strictEqual((yield* issued(server, other))?.scope, OTHER_SCOPE)
        assert.strictEqual(server.requests.length, 2)
        assert.notStrictEqual(server.requests[1]!.form.client_assertion, form.client_assertion)
        assert.deepStrictEqual(server.errors, [])
      }).pipe(using(CertificateCredential.layer({
        tenantId: TENANT,
        clientId: "cert-app",
        certificatePath: pemPath,
        authorityHost: server.url,
        retryPolicy: fastRetry
      })))
    }).pipe(Effect.scoped, withEnv({})))

  it.live("CertificateCredential (RS256 + x5t, x5c chain, encrypted key) is accepted by a client pinned to RS256", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const pem = chainApp.certPem + ca.certPem + toEncryptedPkcs8(chainApp.keyPem, PASSWORD)
      yield* Effect.gen(function*() {
        const token = yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual((yield* issued(server, token))?.clientId, "chain-app")
        const header = decodeProtectedHeader(server.requests[0]!.form.client_assertion!)
        assert.strictEqual(header.alg, "RS256")
        assert.isString(header.x5t)
        assert.strictEqual(header.x5c?.length, 2)
      }).pipe(using(CertificateCredential.layer({
        tenantId: TENANT,
        clientId: "chain-app",
        certificate: Redacted.make(pem),
        certificatePassword: Redacted.make(PASSWORD),
        sendCertificateChain: true,
        signingAlgorithm: "RS256",
        authorityHost: server.url,
        retryPolicy: fastRetry
      })))
      // the same client with PS256 is refused by the server: the pin is real
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(using(CertificateCredential.layer({
        tenantId: TENANT,
        clientId: "chain-app",
        certificate: pem,
        certificatePassword: Redacted.make(PASSWORD),
        authorityHost: server.url,
        retryPolicy: fastRetry
      })))
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, "invalid_client")
      assert.notInclude(error.message + String(error) + JSON.stringify(error), PASSWORD)
    }).pipe(Effect.scoped, withEnv({})))

  it.live("CertificateCredential with a certificate the server does not know is a ClientAuthenticationError", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(using(CertificateCredential.layer({
        tenantId: TENANT,
        clientId: "cert-app",
        certificate: stranger.certPem + stranger.keyPem,
        authorityHost: server.url,
        retryPolicy: fastRetry
      })))
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      if (error._tag === "ClientAuthenticationError") {
        assert.strictEqual(error.status, 401)
        assert.strictEqual(error.error, "invalid_client")
      }
      assert.strictEqual(server.requests.length, 1)
      assert.strictEqual(server.requests[0]!.status, 401)
    }).pipe(Effect.scoped, withEnv({})))

  it.live("ClientAssertionCredential forwards the callback's assertion (signed here with jose, not by the library)", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      let calls = 0
      const key = createPrivateKey(assertionApp.keyPem)
      // live test: the clock is the real one, which oidc-provider checks `exp` against
      const getAssertion = Effect.flatMap(Clock.currentTimeMillis, (millis) =>
        Effect.promise(() => {
          calls++
          const now = Math.floor(millis / 1000)
          return new SignJWT({ jti: randomUUID() })
            .setProtectedHeader({ alg: "RS256" })
            .setIssuer("assertion-app")
            .setSubject("assertion-app")
            .setAudience(server.tokenEndpoint)
            .setIssuedAt(now)
            .setExpirationTime(now + 300)
            .sign(key)
        }))
      yield* Effect.gen(function*() {
        const token = yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual((yield* issued(server, token))?.clientId, "assertion-app")
        yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual(calls, 1)
        yield* TokenCredential.getToken(OTHER_SCOPE)
        assert.strictEqual(calls, 2)
        assert.strictEqual(server.requests.length, 2)
      }).pipe(using(ClientAssertionCredential.layer({
        tenantId: TENANT,
        clientId: "assertion-app",
        getAssertion,
        authorityHost: server.url,
        retryPolicy: fastRetry
      })))
    }).pipe(Effect.scoped, withEnv({})))

  it.live("WorkloadIdentityCredential re-reads the token file: a replayed assertion is refused, a rotated one works", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const dir = yield* tempDir
      const tokenFile = nodePath.join(dir, "azure-identity-token")
      const key = createPrivateKey(assertionApp.keyPem)
      const federatedToken = Effect.flatMap(
        Clock.currentTimeMillis,
        (millis) =>
          Effect.promise(() =>
            new SignJWT({ jti: randomUUID() })
              .setProtectedHeader({ alg: "PS256" })
              .setIssuer("assertion-app")
              .setSubject("assertion-app")
              .setAudience(server.tokenEndpoint)
              .setExpirationTime(Math.floor(millis / 1000) + 300)
              .sign(key)
          )
      )
      fs.writeFileSync(tokenFile, (yield* federatedToken) + "\n")
      yield* Effect.gen(function*() {
        const token = yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual((yield* issued(server, token))?.clientId, "assertion-app")
        // the file was not rotated: the same assertion is sent again and the server refuses the replay
        const replay = yield* Effect.exit(TokenCredential.getToken(OTHER_SCOPE))
        assert.strictEqual(failureOf(replay)._tag, "ClientAuthenticationError")
        assert.strictEqual(server.requests[1]!.form.client_assertion, server.requests[0]!.form.client_assertion)
        // kubelet rotates the file: the next network request reads the new token
        fs.writeFileSync(tokenFile, yield* federatedToken)
        const rotated = yield* TokenCredential.getToken(OTHER_SCOPE)
        assert.strictEqual((yield* issued(server, rotated))?.scope, OTHER_SCOPE)
        assert.strictEqual(server.requests.length, 3)
      }).pipe(
        // no failure hold: the refused replay is asked again at once, so the test needs no 30 s wait (see the
        // failure-hold tests in ClientSecretCredential.test.ts)
        using(
          WorkloadIdentityCredential.layer({ authorityHost: server.url, retryPolicy: fastRetry }).pipe(
            Layer.provide(TokenCache.layerPolicy({ failureHoldMillis: 0 }))
          )
        ),
        // what AKS injects into the pod
        withEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: "assertion-app", AZURE_FEDERATED_TOKEN_FILE: tokenFile })
      )
    }).pipe(Effect.scoped))

  it.live("ClientSecretCredential with client_secret_post gets a token; a wrong secret is refused", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const secretLayer = (secret: string) =>
        ClientSecretCredential.layer({
          tenantId: TENANT,
          clientId: "secret-app",
          clientSecret: Redacted.make(secret),
          authorityHost: server.url,
          retryPolicy: fastRetry
        })
      const token = yield* TokenCredential.getToken(SCOPE).pipe(using(secretLayer(SECRET)))
      assert.deepStrictEqual(yield* issued(server, token), {
        clientId: "secret-app",
        scope: SCOPE,
        audience: RESOURCE,
        kind: "ClientCredentials"
      })
      assert.strictEqual(server.requests[0]!.form.client_secret, SECRET)
      const wrong = "wrong-secret-value-0123456789"
      const error = failureOf(yield* Effect.exit(TokenCredential.getToken(SCOPE).pipe(using(secretLayer(wrong)))))
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, "invalid_client")
      for (const form of [error.message, String(error), JSON.stringify(error)]) {
        assert.notInclude(form, wrong)
        assert.notInclude(form, SECRET)
      }
    }).pipe(Effect.scoped, withEnv({})))
})

/**
 * The identity emulator exercised by this library's credentials through the real Node HttpClient, and by raw
 * requests for what no credential sends (garbage, reused codes, forged assertions). Every refusal must be an
 * Entra-shaped error body, never a crash.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  AuthorizationCodeCredential,
  CertificateCredential,
  ClientSecretCredential,
  DeviceCodeCredential,
  ManagedIdentityCredential,
  OnBehalfOfCredential,
  TokenCredential,
  UsernamePasswordCredential,
  WorkloadIdentityCredential
} from "effect-azure-identity"
import type { IdentityError } from "effect-azure-identity/IdentityError"
import * as IdentityNode from "effect-azure-identity/node"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as fc from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as jose from "jose"
import { createHash, createPrivateKey, randomUUID, X509Certificate } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { withEnv } from "../../../../test/support/helpers.js"
import { makeSelfSigned } from "../../../../test/support/tls.js"
import * as IdentityEmulator from "../../src/IdentityEmulator.js"

const SCOPE = "https://vault.azure.net/.default"
const SECRET = "emulator-test-secret-value"

const fastRetries = {
  maxRetries: 2,
  baseDelayMillis: 1,
  maxDelayMillis: 5,
  maxElapsedMillis: 5_000,
  attemptTimeoutMillis: 5_000,
  retryStatus: (s: number) => s === 429 || s >= 500
}

const certificates = Effect.cached(
  Effect.promise(async () => ({
    app: await makeSelfSigned({ commonName: "emulator-test-app" }),
    stranger: await makeSelfSigned({ commonName: "stranger" })
  }))
).pipe(Effect.runSync)

/** Starts an emulator for one test (an app with a secret and a certificate, one user), and stops it after. */
const withEmulator = <A, E, R>(
  f: (emulator: IdentityEmulator.Service) => Effect.Effect<A, E, R>,
  options: IdentityEmulator.Options = {}
) =>
  Effect.gen(function*() {
    const { app } = yield* certificates
    const emulator = yield* IdentityEmulator.make({
      apps: [{
        clientId: IdentityEmulator.defaultClientId,
        secrets: [SECRET],
        certificates: [app.certPem],
        publicClient: true
      }],
      users: [{ username: "ada@emulator.test", password: "ada-password" }],
      deviceCodeIntervalSeconds: 1,
      ...options
    })
    return yield* f(emulator)
  }).pipe(Effect.scoped, withEnv({}))

const getToken = (
  layer: Layer.Layer<TokenCredential.TokenCredential, never, Layer.Layer.Success<typeof IdentityNode.layer>>,
  scope = SCOPE
) => TokenCredential.getToken(scope).pipe(Effect.provide(layer.pipe(Layer.provide(IdentityNode.layer))))

const failureOf = <A>(exit: Exit.Exit<A, IdentityError>): IdentityError => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error(`expected a typed failure, got ${exit}`)
  return exit.cause.error
}

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: any
}

const send = (url: string, init: RequestInit = {}) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, { redirect: "manual", ...init })
    const text = await response.text()
    let json: any = undefined
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json }
  })

const postForm = (url: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  send(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString()
  })

/** The fields of Entra's error body, with the AADSTS code in the description. */
const assertEntraError = (answer: Answer, status: number, error: string, code: number) => {
  assert.strictEqual(answer.status, status, answer.text)
  assert.strictEqual(answer.json?.error, error, answer.text)
  assert.deepStrictEqual(answer.json.error_codes, [code])
  assert.match(answer.json.error_description, new RegExp(`^AADSTS${code}: `))
  assert.match(
    answer.json.error_description,
    /\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: /
  )
  assert.match(answer.json.trace_id, /^[0-9a-f-]{36}$/)
  assert.match(answer.json.correlation_id, /^[0-9a-f-]{36}$/)
  assert.match(answer.json.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/)
}

const secretLayer = (emulator: IdentityEmulator.Service, secret = SECRET) =>
  ClientSecretCredential.layer({
    tenantId: emulator.tenantId,
    clientId: emulator.clientId,
    clientSecret: Redacted.make(secret),
    authorityHost: emulator.url,
    retryPolicy: fastRetries
  })

/** A client assertion signed with `keyPem`, with the header and claims a test wants. */
const assertion = (
  emulator: IdentityEmulator.Service,
  options: {
    readonly keyPem: string
    readonly certPem: string
    readonly alg?: "PS256" | "RS256"
    readonly audience?: string
    readonly nbf?: number
    readonly exp?: number
    readonly thumbprint?: "x5t" | "x5t#S256"
  }
) =>
  Effect.promise(() => {
    const der = new X509Certificate(options.certPem).raw
    const alg = options.alg ?? "PS256"
    const thumbprint = options.thumbprint ?? (alg === "PS256" ? "x5t#S256" : "x5t")
    const now = Math.floor(Date.now() / 1000)
    return new jose.SignJWT({ jti: randomUUID() })
      .setProtectedHeader({
        alg,
        typ: "JWT",
        [thumbprint]: createHash(thumbprint === "x5t" ? "sha1" : "sha256").update(der).digest("base64url")
      })
      .setIssuer(emulator.clientId)
      .setSubject(emulator.clientId)
      .setAudience(options.audience ?? emulator.endpoints.token)
      .setNotBefore(options.nbf ?? now)
      .setExpirationTime(options.exp ?? now + 600)
      .sign(createPrivateKey(options.keyPem))
  })

const assertionForm = (emulator: IdentityEmulator.Service, jwt: string) => ({
  grant_type: "client_credentials",
  client_id: emulator.clientId,
  scope: SCOPE,
  client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
  client_assertion: jwt
})

describe("IdentityEmulator: Entra token endpoint", () => {
  it.live("issues signed tokens with Entra's claims to ClientSecretCredential", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const token = yield* getToken(secretLayer(emulator))
        const claims = yield* emulator.verifyToken(Redacted.value(token.token))
        assert.strictEqual(claims.aud, "https://vault.azure.net")
        assert.strictEqual(claims.iss, `${emulator.url}/${emulator.tenantId}/v2.0`)
        assert.strictEqual(claims.tid, emulator.tenantId)
        assert.strictEqual(claims.appid, emulator.clientId)
        assert.strictEqual(claims.idtyp, "app")
        assert.isString(claims.oid)
        assert.strictEqual(claims.exp! - claims.iat!, 600)
        assert.strictEqual(claims.nbf, claims.iat)
        // the credential's expiry comes from expires_in, counted from when the request was sent
        assert.isTrue(Math.abs(token.expiresOn.epochMillis - claims.exp! * 1000) < 5_000)
        const header = jose.decodeProtectedHeader(Redacted.value(token.token))
        assert.strictEqual(header.alg, "RS256")
        assert.strictEqual(header.kid, emulator.jwks.keys[0]!.kid)
      }), { tokenLifetime: "10 minutes" }))

  it.live("layerConfigProvider feeds layerConfig() the emulator's variables, not process.env", () =>
    Effect.gen(function*() {
      const token = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.provide(ClientSecretCredential.layerConfig().pipe(Layer.provide(IdentityNode.layer))),
        Effect.provide(IdentityEmulator.layerConfigProvider("environment")),
        Effect.provide(IdentityEmulator.layer())
      )
      assert.isTrue(Redacted.value(token.token).split(".").length === 3)
    }).pipe(withEnv({})))

  it.live("a wrong secret is AADSTS7000215 in Entra's error shape, and the secret appears nowhere", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const wrong = "wrong-secret-value-123"
        const error = failureOf(yield* Effect.exit(getToken(secretLayer(emulator, wrong))))
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        if (error._tag !== "ClientAuthenticationError") return
        assert.strictEqual(error.status, 401)
        assert.strictEqual(error.error, "invalid_client")
        assert.deepStrictEqual(error.errorCodes, [7000215])
        assert.match(error.traceId ?? "", /^[0-9a-f-]{36}$/)
        assert.match(error.correlationId ?? "", /^[0-9a-f-]{36}$/)
        assert.include(error.message, "AADSTS7000215")
        const everything = `${error.message} ${String(error)} ${JSON.stringify(error)}`
        assert.notInclude(everything, wrong)
        assert.notInclude(everything, SECRET)

        const raw = yield* postForm(emulator.endpoints.token, {
          grant_type: "client_credentials",
          client_id: emulator.clientId,
          client_secret: wrong,
          scope: SCOPE
        }, { "client-request-id": "0f0e0d0c-0b0a-4000-8000-000000000001" })
        assertEntraError(raw, 401, "invalid_client", 7000215)
        assert.strictEqual(raw.json.correlation_id, "0f0e0d0c-0b0a-4000-8000-000000000001")
        assert.notInclude(raw.text, wrong)
      })
    ))

  it.live("an unknown client id is AADSTS700016; an unknown tenant AADSTS90002", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const unknown = yield* postForm(emulator.endpoints.token, {
          grant_type: "client_credentials",
          client_id: "99999999-9999-4999-8999-999999999999",
          client_secret: SECRET,
          scope: SCOPE
        })
        assertEntraError(unknown, 400, "unauthorized_client", 700016)
        const tenant = yield* postForm(`${emulator.url}/another-tenant/oauth2/v2.0/token`, {
          grant_type: "client_credentials",
          client_id: emulator.clientId,
          client_secret: SECRET,
          scope: SCOPE
        })
        assertEntraError(tenant, 400, "invalid_request", 90002)
      })
    ))

  it.live("client credentials need a /.default scope and a secret or assertion", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const base = { grant_type: "client_credentials", client_id: emulator.clientId }
        assertEntraError(
          yield* postForm(emulator.endpoints.token, { ...base, client_secret: SECRET, scope: "User.Read" }),
          400,
          "invalid_scope",
          1002012
        )
        assertEntraError(
          yield* postForm(emulator.endpoints.token, { ...base, client_secret: SECRET, scope: `${SCOPE} a/.default` }),
          400,
          "invalid_scope",
          70011
        )
        assertEntraError(
          yield* postForm(emulator.endpoints.token, { ...base, scope: SCOPE }),
          401,
          "invalid_client",
          7000218
        )
        assertEntraError(
          yield* postForm(emulator.endpoints.token, { ...base, client_secret: SECRET }),
          400,
          "invalid_request",
          900144
        )
        assertEntraError(
          yield* postForm(emulator.endpoints.token, { ...base, grant_type: "magic", scope: SCOPE }),
          400,
          "unsupported_grant_type",
          70003
        )
      })
    ))

  it.live("garbage never crashes it: every answer is a 4xx Entra error", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const bodies: Array<RequestInit> = [
          { method: "POST", body: "\u0000\u0001\u00ff%%%&&&==" },
          { method: "POST", headers: { "content-type": "application/json" }, body: "{\"grant_type\":" },
          { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "%E0%A4%A" },
          {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: "grant_type=" + "x".repeat(300_000)
          },
          {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: "grant_type=client_credentials&grant_type=password&client_id=&client_id=x"
          }
        ]
        for (const init of bodies) {
          const answer = yield* send(emulator.endpoints.token, init)
          assert.isTrue(answer.status >= 400 && answer.status < 500, `${answer.status} ${answer.text}`)
          assert.isString(answer.json?.error)
          assert.deepStrictEqual(answer.json.error_codes.length, 1)
        }
        const forms = fc.sample(
          fc.dictionary(
            fc.constantFrom(
              "grant_type",
              "client_id",
              "client_secret",
              "scope",
              "code",
              "refresh_token",
              "client_assertion",
              "client_assertion_type",
              "device_code",
              "assertion",
              "requested_token_use",
              "username",
              "password"
            ),
            fc.oneof(
              fc.string(),
              fc.constantFrom(
                "client_credentials",
                "authorization_code",
                "refresh_token",
                "password",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                IdentityEmulator.defaultClientId,
                "eyJhbGciOiJub25lIn0.eyJ9.",
                SCOPE
              )
            )
          ),
          { numRuns: 60, seed: 42 }
        )
        for (const form of forms) {
          const answer = yield* postForm(emulator.endpoints.token, form)
          assert.isTrue(answer.status >= 400 && answer.status < 500, `${answer.status} ${answer.text}`)
          assert.isString(answer.json?.error, answer.text)
          assert.isString(answer.json.trace_id)
        }
        const weirdTenant = yield* postForm(`${emulator.url}/%00..%2F/oauth2/v2.0/token`, { grant_type: "x" })
        assert.isTrue(weirdTenant.status >= 400 && weirdTenant.status < 500)
        const notFound = yield* send(`${emulator.url}/nothing/here`)
        assert.strictEqual(notFound.status, 404)
      })
    ))
})

describe("IdentityEmulator: client assertions", () => {
  it.live("CertificateCredential gets tokens with PS256 + x5t#S256 and with RS256 + x5t", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const { app } = yield* certificates
        for (const signingAlgorithm of ["PS256", "RS256"] as const) {
          const token = yield* getToken(CertificateCredential.layer({
            tenantId: emulator.tenantId,
            clientId: emulator.clientId,
            certificate: Redacted.make(app.certPem + app.keyPem),
            signingAlgorithm,
            authorityHost: emulator.url,
            retryPolicy: fastRetries
          }))
          const claims = yield* emulator.verifyToken(Redacted.value(token.token))
          assert.strictEqual(claims.appid, emulator.clientId)
        }
      })
    ))

  it.live("an unregistered certificate is AADSTS700027 for CertificateCredential", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const { stranger } = yield* certificates
        const error = failureOf(
          yield* Effect.exit(getToken(CertificateCredential.layer({
            tenantId: emulator.tenantId,
            clientId: emulator.clientId,
            certificate: Redacted.make(stranger.certPem + stranger.keyPem),
            authorityHost: emulator.url,
            retryPolicy: fastRetries
          })))
        )
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        assert.include(error.message, "AADSTS700027")
        assert.notInclude(JSON.stringify(error), "PRIVATE KEY")
      })
    ))

  it.live("forged, expired, mis-addressed and malformed assertions get the AADSTS codes Entra uses", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const { app, stranger } = yield* certificates
        const now = Math.floor(Date.now() / 1000)
        const post = (jwt: string) => postForm(emulator.endpoints.token, assertionForm(emulator, jwt))
        // the registered certificate's thumbprint, signed by another key
        const forged = yield* assertion(emulator, { keyPem: stranger.keyPem, certPem: app.certPem })
        assertEntraError(yield* post(forged), 401, "invalid_client", 700027)
        const expired = yield* assertion(emulator, {
          keyPem: app.keyPem,
          certPem: app.certPem,
          nbf: now - 7200,
          exp: now - 3600
        })
        assertEntraError(yield* post(expired), 401, "invalid_client", 700024)
        const early = yield* assertion(emulator, { keyPem: app.keyPem, certPem: app.certPem, nbf: now + 3600 })
        assertEntraError(yield* post(early), 401, "invalid_client", 700024)
        const elsewhere = yield* assertion(emulator, {
          keyPem: app.keyPem,
          certPem: app.certPem,
          audience: "https://login.microsoftonline.com/other/oauth2/v2.0/token"
        })
        assertEntraError(yield* post(elsewhere), 401, "invalid_client", 50027)
        assertEntraError(yield* post("not.a.jwt"), 401, "invalid_client", 50027)
        const good = yield* assertion(emulator, { keyPem: app.keyPem, certPem: app.certPem, alg: "RS256" })
        assert.strictEqual((yield* post(good)).status, 200)
        const noType = yield* postForm(emulator.endpoints.token, {
          ...assertionForm(emulator, good),
          client_assertion_type: "something-else"
        })
        assertEntraError(noType, 400, "invalid_request", 900144)
      })
    ))

  it.live("WorkloadIdentityCredential exchanges the federated token file; subjects are checked", () =>
    Effect.gen(function*() {
      yield* withEmulator((emulator) =>
        Effect.gen(function*() {
          const token = yield* getToken(WorkloadIdentityCredential.layerConfig()).pipe(
            Effect.withConfigProvider(emulator.configProviderFor("workload-identity"))
          )
          assert.strictEqual((yield* emulator.verifyToken(Redacted.value(token.token))).appid, emulator.clientId)
          const wrongAudience = yield* emulator.mintFederatedToken({ audience: "api://elsewhere" })
          assertEntraError(
            yield* postForm(emulator.endpoints.token, assertionForm(emulator, wrongAudience)),
            401,
            "invalid_client",
            700212
          )
        })
      )
      yield* withEmulator((emulator) =>
        Effect.gen(function*() {
          const federated = yield* emulator.mintFederatedToken({ subject: "system:serviceaccount:default:intruder" })
          assertEntraError(
            yield* postForm(emulator.endpoints.token, assertionForm(emulator, federated)),
            401,
            "invalid_client",
            700213
          )
        }), {
        apps: [{
          clientId: IdentityEmulator.defaultClientId,
          federatedSubjects: ["system:serviceaccount:default:workload"]
        }]
      })
    }))
})

describe("IdentityEmulator: user flows", () => {
  it.live("AuthorizationCodeCredential redeems a minted code once; reuse is AADSTS54005", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const redirectUri = "http://localhost:8400/callback"
        const code = yield* emulator.mintAuthorizationCode({ redirectUri })
        const token = yield* getToken(AuthorizationCodeCredential.layer({
          tenantId: emulator.tenantId,
          clientId: emulator.clientId,
          authorizationCode: Redacted.make(code),
          redirectUri,
          clientSecret: Redacted.make(SECRET),
          authorityHost: emulator.url,
          retryPolicy: fastRetries
        }))
        const claims = yield* emulator.verifyToken(Redacted.value(token.token))
        assert.strictEqual(claims.upn, "ada@emulator.test")
        assert.strictEqual(claims.idtyp, "user")
        const reused = yield* postForm(emulator.endpoints.token, {
          grant_type: "authorization_code",
          client_id: emulator.clientId,
          client_secret: SECRET,
          code,
          redirect_uri: redirectUri,
          scope: SCOPE
        })
        assertEntraError(reused, 400, "invalid_grant", 54005)
        assert.notInclude(reused.text, code)
      })
    ))

  it.live("authorize redirects with a code; PKCE and redirect URI are enforced; refresh tokens rotate and revoke", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const verifier = "a-code-verifier-that-is-long-enough-to-be-valid-0123456789"
        const challenge = createHash("sha256").update(verifier).digest("base64url")
        const redirectUri = "http://127.0.0.1:9999/cb"
        const authorize = yield* send(
          `${emulator.endpoints.authorize}?${new URLSearchParams({
            client_id: emulator.clientId,
            redirect_uri: redirectUri,
            scope: `${SCOPE} openid offline_access`,
            state: "xyz",
            code_challenge: challenge,
            code_challenge_method: "S256",
            prompt: "none"
          })}`
        )
        assert.strictEqual(authorize.status, 302)
        const location = new URL(authorize.headers.get("location")!)
        assert.strictEqual(location.origin + location.pathname, redirectUri)
        assert.strictEqual(location.searchParams.get("state"), "xyz")
        const code = location.searchParams.get("code")!
        const redeem = (extra: Record<string, string>) =>
          postForm(emulator.endpoints.token, {
            grant_type: "authorization_code",
            client_id: emulator.clientId,
            code,
            redirect_uri: redirectUri,
            scope: `${SCOPE} openid offline_access`,
            client_info: "1",
            ...extra
          })
        assertEntraError(yield* redeem({ code_verifier: "wrong" }), 400, "invalid_grant", 501481)
        assertEntraError(
          yield* redeem({ code_verifier: verifier, redirect_uri: "http://127.0.0.1:9999/other" }),
          400,
          "invalid_grant",
          50011
        )
        const ok = yield* redeem({ code_verifier: verifier })
        assert.strictEqual(ok.status, 200, ok.text)
        assert.isString(ok.json.refresh_token)
        assert.isString(ok.json.id_token)
        const clientInfo = JSON.parse(Buffer.from(ok.json.client_info, "base64url").toString())
        assert.strictEqual(clientInfo.utid, emulator.tenantId)
        assert.include(ok.json.scope, "openid")
        const refresh = (token: string) =>
          postForm(emulator.endpoints.token, {
            grant_type: "refresh_token",
            client_id: emulator.clientId,
            refresh_token: token,
            scope: SCOPE
          })
        const refreshed = yield* refresh(ok.json.refresh_token)
        assert.strictEqual(refreshed.status, 200, refreshed.text)
        assert.notStrictEqual(refreshed.json.refresh_token, ok.json.refresh_token)
        assertEntraError(yield* refresh("not-a-refresh-token"), 400, "invalid_grant", 9002313)
        assert.isTrue((yield* emulator.revokeRefreshTokens()) >= 2)
        assertEntraError(yield* refresh(refreshed.json.refresh_token), 400, "invalid_grant", 50173)
        const badRedirect = yield* send(
          `${emulator.endpoints.authorize}?${new URLSearchParams({
            client_id: emulator.clientId,
            redirect_uri: "javascript:alert(1)"
          })}`
        )
        assertEntraError(badRedirect, 400, "invalid_request", 50011)
      })
    ))

  it.live("mintRefreshToken gives a refresh token the token endpoint redeems (as a shared cache would hold)", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const minted = yield* emulator.mintRefreshToken()
        assert.strictEqual(minted.username, "ada@emulator.test")
        assert.isTrue(minted.homeAccountId.endsWith(`.${emulator.tenantId}`))
        const answer = yield* postForm(emulator.endpoints.token, {
          grant_type: "refresh_token",
          client_id: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
          refresh_token: Redacted.value(minted.refreshToken),
          scope: `${SCOPE} offline_access`,
          client_info: "1"
        })
        assert.strictEqual(answer.status, 200, answer.text)
        const claims = yield* emulator.verifyToken(answer.json.access_token)
        assert.strictEqual(`${claims.oid}.${claims.tid}`, minted.homeAccountId)
        const nobody = yield* Effect.either(emulator.mintRefreshToken({ username: "nobody@emulator.test" }))
        assert.strictEqual(nobody._tag, "Left")
        const noApp = yield* Effect.either(emulator.mintRefreshToken({ clientId: "not-registered" }))
        assert.strictEqual(noApp._tag, "Left")
        const noCode = yield* Effect.either(emulator.mintAuthorizationCode({ clientId: "not-registered" }))
        assert.strictEqual(noCode._tag, "Left")
      })
    ))

  it.live("device code: pending, approval through DeviceCodeCredential's prompt, denial", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const token = yield* getToken(DeviceCodeCredential.layer({
          tenantId: emulator.tenantId,
          clientId: emulator.clientId,
          authorityHost: emulator.url,
          prompt: (info) => Effect.asVoid(emulator.approveDeviceCode(info.userCode))
        }))
        assert.strictEqual((yield* emulator.verifyToken(Redacted.value(token.token))).upn, "ada@emulator.test")

        const start = yield* postForm(emulator.endpoints.deviceCode, { client_id: emulator.clientId, scope: SCOPE })
        assert.strictEqual(start.status, 200)
        assert.strictEqual(start.json.interval, 1)
        assert.include(start.json.message, start.json.user_code)
        assert.deepStrictEqual(yield* emulator.pendingDeviceCodes, [start.json.user_code])
        const poll = postForm(emulator.endpoints.token, {
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          client_id: emulator.clientId,
          device_code: start.json.device_code
        })
        assertEntraError(yield* poll, 400, "authorization_pending", 70016)
        assert.isTrue(yield* emulator.denyDeviceCode(start.json.user_code))
        assertEntraError(yield* poll, 400, "authorization_declined", 70000)

        // and through the emulator's own device login page
        const second = yield* postForm(emulator.endpoints.deviceCode, { client_id: emulator.clientId, scope: SCOPE })
        const page = yield* send(emulator.endpoints.deviceLogin)
        assert.include(page.text, "user_code")
        const approved = yield* postForm(emulator.endpoints.deviceLogin, { user_code: second.json.user_code })
        assert.strictEqual(approved.status, 200)
        const redeemed = yield* postForm(emulator.endpoints.token, {
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          client_id: emulator.clientId,
          device_code: second.json.device_code
        })
        assert.strictEqual(redeemed.status, 200)
      })
    ))

  it.live("UsernamePasswordCredential: the right password gets a token, a wrong one AADSTS50126", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const layer = (password: string) =>
          UsernamePasswordCredential.layer({
            tenantId: emulator.tenantId,
            clientId: emulator.clientId,
            username: "ada@emulator.test",
            password: Redacted.make(password),
            authorityHost: emulator.url,
            retryPolicy: fastRetries
          })
        const token = yield* getToken(layer("ada-password"))
        assert.strictEqual((yield* emulator.verifyToken(Redacted.value(token.token))).upn, "ada@emulator.test")
        const error = failureOf(yield* Effect.exit(getToken(layer("not-her-password"))))
        assert.include(error.message, "AADSTS50126")
        assert.notInclude(JSON.stringify(error) + error.message, "not-her-password")
      })
    ))

  it.live("OnBehalfOfCredential exchanges a user token addressed to the app; others are AADSTS50013", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const layer = (assertionToken: string) =>
          OnBehalfOfCredential.layer({
            tenantId: emulator.tenantId,
            clientId: emulator.clientId,
            userAssertionToken: Redacted.make(assertionToken),
            clientSecret: Redacted.make(SECRET),
            authorityHost: emulator.url,
            retryPolicy: fastRetries
          })
        const incoming = yield* emulator.mintUserToken({ audience: emulator.clientId })
        const token = yield* getToken(layer(incoming), "https://graph.microsoft.com/.default")
        const claims = yield* emulator.verifyToken(Redacted.value(token.token))
        assert.strictEqual(claims.upn, "ada@emulator.test")
        assert.strictEqual(claims.aud, "https://graph.microsoft.com")
        const elsewhere = yield* emulator.mintUserToken({ audience: "api://some-other-api" })
        const error = failureOf(yield* Effect.exit(getToken(layer(elsewhere))))
        assert.include(error.message, "AADSTS50013")
      })
    ))
})

describe("IdentityEmulator: discovery", () => {
  it.live("serves the OpenID configuration and the keys tokens verify with", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const config = yield* send(emulator.endpoints.openidConfiguration)
        assert.strictEqual(config.status, 200)
        assert.strictEqual(config.json.token_endpoint, emulator.endpoints.token)
        assert.strictEqual(config.json.issuer, `${emulator.url}/${emulator.tenantId}/v2.0`)
        assert.strictEqual(config.json.device_authorization_endpoint, emulator.endpoints.deviceCode)
        const common = yield* send(`${emulator.url}/organizations/v2.0/.well-known/openid-configuration`)
        assert.strictEqual(common.json.issuer, `${emulator.url}/{tenantid}/v2.0`)
        const keys = yield* send(config.json.jwks_uri)
        const token = yield* getToken(secretLayer(emulator))
        const verified = yield* Effect.promise(() =>
          jose.jwtVerify(Redacted.value(token.token), jose.createLocalJWKSet(keys.json))
        )
        assert.strictEqual(verified.payload.tid, emulator.tenantId)
        const unknown = yield* send(`${emulator.url}/nope/v2.0/.well-known/openid-configuration`)
        assertEntraError(unknown, 400, "invalid_request", 90002)
      })
    ))
})

describe("IdentityEmulator: managed identity hosts", () => {
  const mi = (
    emulator: IdentityEmulator.Service,
    scenario: IdentityEmulator.Scenario,
    options: ManagedIdentityCredential.Options = {}
  ) =>
    getToken(
      ManagedIdentityCredential.layer({ azureArc: { keyDirectory: emulator.arcKeyDirectory }, ...options })
    ).pipe(Effect.withConfigProvider(emulator.configProviderFor(scenario)))

  it.live("ManagedIdentityCredential gets tokens from IMDS, App Service 2019/2017, Cloud Shell and Azure Arc", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const system = emulator.systemAssignedIdentity!
        const user = emulator.userAssignedIdentities[0]!
        for (const scenario of ["imds", "app-service-2019", "app-service-2017", "azure-arc"] as const) {
          const token = yield* mi(emulator, scenario)
          const claims = yield* emulator.verifyToken(Redacted.value(token.token))
          assert.strictEqual(claims.appid, system.clientId, scenario)
          assert.strictEqual(claims.oid, system.objectId, scenario)
          assert.strictEqual(claims.aud, "https://vault.azure.net", scenario)
          assert.isTrue(token.expiresOn.epochMillis > Date.now() + 23 * 3600_000, scenario)
        }
        for (const scenario of ["imds", "app-service-2019", "app-service-2017"] as const) {
          const token = yield* mi(emulator, scenario, { clientId: user.clientId })
          assert.strictEqual((yield* emulator.verifyToken(Redacted.value(token.token))).appid, user.clientId)
        }
        const imdsByResource = yield* mi(emulator, "imds", { resourceId: user.resourceId })
        assert.strictEqual((yield* emulator.verifyToken(Redacted.value(imdsByResource.token))).oid, user.objectId)
        const shell = yield* mi(emulator, "cloud-shell")
        assert.strictEqual((yield* emulator.verifyToken(Redacted.value(shell.token))).upn, "ada@emulator.test")
        const missing = failureOf(
          yield* Effect.exit(mi(emulator, "imds", { clientId: "00000000-0000-4000-8000-00000000dead" }))
        )
        assert.strictEqual(missing._tag, "CredentialUnavailableError")
        const routes = (yield* emulator.requests).map((r) => r.route)
        for (const route of ["imds", "appService2019", "appService2017", "cloudShell", "arc"]) {
          assert.include(routes, route)
        }
      })
    ))

  it.live("answers what the hosts answer to bad requests", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        const imds = `${emulator.url}/metadata/identity/oauth2/token`
        const probe = yield* send(imds)
        assert.strictEqual(probe.status, 400)
        assert.strictEqual(probe.json.error, "invalid_request")
        const noResource = yield* send(`${imds}?api-version=2018-02-01`, { headers: { Metadata: "true" } })
        assert.strictEqual(noResource.json.error_description, "Required audience parameter not specified")
        const noVersion = yield* send(`${imds}?resource=x`, { headers: { Metadata: "true" } })
        assert.strictEqual(noVersion.status, 400)
        const q = "?api-version=2019-08-01&resource=https://vault.azure.net"
        const header = yield* send(`${emulator.endpoints.appService2019}${q}`, {
          headers: { "X-IDENTITY-HEADER": "wrong" }
        })
        assert.strictEqual(header.status, 401)
        assert.strictEqual(header.json.statusCode, 401)
        const legacy = yield* send(`${emulator.endpoints.msiEndpoint}${q}`, {
          headers: { secret: emulator.envFor("app-service-2017").MSI_SECRET! }
        })
        assert.match(legacy.json.expires_on, /^\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d \+00:00$/)
        const challenge = yield* send(`${emulator.endpoints.arc}?api-version=2020-06-01&resource=x`, {
          headers: { Metadata: "true" }
        })
        assert.strictEqual(challenge.status, 401)
        const realm = /^Basic realm=(.+)$/.exec(challenge.headers.get("www-authenticate") ?? "")![1]!
        assert.strictEqual(path.dirname(realm), emulator.arcKeyDirectory)
        assert.isTrue(realm.endsWith(".key"))
        assert.isTrue(fs.readFileSync(realm, "utf8").length > 0)
        const wrongKey = yield* send(`${emulator.endpoints.arc}?api-version=2020-06-01&resource=x`, {
          headers: { Metadata: "true", Authorization: "Basic not-the-key" }
        })
        assert.strictEqual(wrongKey.status, 401)
        const shell = yield* send(emulator.endpoints.msiEndpoint, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "resource=x"
        })
        assert.strictEqual(shell.status, 400)
      })
    ))
})

describe("IdentityEmulator: faults", () => {
  it.live("a 503 with Retry-After is retried by the credential; a malformed body is a typed error", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        yield* emulator.setFault("token", { status: 503, retryAfterSeconds: 0, times: 1 })
        const token = yield* getToken(secretLayer(emulator))
        assert.isTrue(Redacted.value(token.token).length > 0)
        const statuses = (yield* emulator.requests).filter((r) => r.route === "token").map((r) => r.status)
        assert.deepStrictEqual(statuses, [503, 200])

        yield* emulator.setFault("token", { malformedBody: true })
        const error = failureOf(
          yield* Effect.exit(getToken(secretLayer(emulator), "https://storage.azure.com/.default"))
        )
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        assert.include(error.message, "not JSON")
        yield* emulator.clearFaults

        yield* emulator.setFault("imds", { status: 429, retryAfterSeconds: 7, times: 1 })
        const throttled = yield* send(`${emulator.url}/metadata/identity/oauth2/token`)
        assert.strictEqual(throttled.status, 429)
        assert.strictEqual(throttled.headers.get("retry-after"), "7")

        yield* emulator.setFault("openid", { delay: "150 millis", times: 1 })
        const start = Date.now()
        const slow = yield* send(emulator.endpoints.openidConfiguration)
        assert.strictEqual(slow.status, 200)
        assert.isAtLeast(Date.now() - start, 140)
      }), { faults: { keys: { status: 500 } } }))

  it.live("faults given at start apply; a 429 on Entra routes is Entra-shaped", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        assert.strictEqual((yield* send(`${emulator.url}/${emulator.tenantId}/discovery/v2.0/keys`)).status, 500)
        yield* emulator.setFault("token", { status: 429, retryAfterSeconds: 1 })
        const answer = yield* postForm(emulator.endpoints.token, { grant_type: "client_credentials" })
        assertEntraError(answer, 429, "temporarily_unavailable", 50196)
        yield* emulator.setFault("token", undefined)
        assert.strictEqual((yield* postForm(emulator.endpoints.token, {})).status, 400)
      }), { faults: { keys: { status: 500 } } }))
})

describe("IdentityEmulator: lifecycle", () => {
  it.live("exposes every variable a program needs and removes its files when it stops", () =>
    Effect.gen(function*() {
      const files = yield* withEmulator((emulator) =>
        Effect.gen(function*() {
          const env = emulator.env
          for (
            const name of [
              "AZURE_AUTHORITY_HOST",
              "AZURE_TENANT_ID",
              "AZURE_CLIENT_ID",
              "AZURE_CLIENT_SECRET",
              "AZURE_FEDERATED_TOKEN_FILE",
              "IDENTITY_ENDPOINT",
              "IDENTITY_HEADER",
              "MSI_ENDPOINT",
              "MSI_SECRET",
              "AZURE_POD_IDENTITY_AUTHORITY_HOST"
            ]
          ) assert.isString(env[name], name)
          assert.deepStrictEqual(Object.keys(emulator.envFor("azure-arc")).sort(), [
            "IDENTITY_ENDPOINT",
            "IMDS_ENDPOINT"
          ])
          assert.deepStrictEqual(Object.keys(emulator.envFor("cloud-shell")), ["MSI_ENDPOINT"])
          const lines = IdentityEmulator.exportLines({ A: "it's" })
          assert.deepStrictEqual(lines, ["export A='it'\\''s'"])
          assert.isTrue(fs.existsSync(emulator.federatedTokenFile))
          return { token: emulator.federatedTokenFile, url: emulator.url }
        })
      )
      assert.isFalse(fs.existsSync(files.token))
      const after = yield* Effect.either(Effect.tryPromise(() => fetch(files.url)))
      assert.strictEqual(after._tag, "Left")
    }))

  it.live("fails to start with an EmulatorError for a bad certificate or a busy port", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.exit(
        IdentityEmulator.make({ apps: [{ clientId: "x", certificates: ["not a certificate"] }] }).pipe(Effect.scoped)
      )
      assert.isTrue(Exit.isFailure(bad))
      assert.include(String(bad), "not a PEM X.509 certificate")
      yield* Effect.gen(function*() {
        const first = yield* IdentityEmulator.make()
        const port = Number(new URL(first.url).port)
        const busy = yield* Effect.exit(IdentityEmulator.make({ port }).pipe(Effect.scoped))
        assert.isTrue(Exit.isFailure(busy))
        assert.include(String(busy), "choose another port")
      }).pipe(Effect.scoped)
    }).pipe(withEnv({})))
})

describe("IdentityEmulator: input it cannot use", () => {
  it.live("a redirect URI that is not a URL is AADSTS90102, not a 500", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        for (const redirectUri of ["http://[::1", "https://"]) {
          const answer = yield* send(
            `${emulator.endpoints.authorize}?${new URLSearchParams({
              client_id: emulator.clientId,
              redirect_uri: redirectUri
            })}`
          )
          assertEntraError(answer, 400, "invalid_request", 90102)
        }
      })
    ))

  it.live("a wrong method on the token endpoint is Entra-shaped; an unknown route a JSON 404", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        assertEntraError(yield* send(emulator.endpoints.token), 400, "invalid_request", 900561)
        assertEntraError(yield* send(emulator.endpoints.deviceCode), 400, "invalid_request", 900561)
        assertEntraError(
          yield* send(emulator.endpoints.token, { method: "PUT", body: "x" }),
          400,
          "invalid_request",
          900561
        )
        const unknown = yield* send(`${emulator.url}/nothing/here`)
        assert.strictEqual(unknown.status, 404)
        assert.strictEqual(unknown.json?.error, "not_found", unknown.text)
        const badPath = yield* postForm(`${emulator.url}/%E0%A4%A/oauth2/v2.0/token`, { grant_type: "x" })
        assert.isTrue(badPath.status >= 400 && badPath.status < 500, `${badPath.status}`)
        assert.isString(badPath.json?.error, badPath.text)
        // still answers normally afterwards
        assert.strictEqual((yield* send(emulator.endpoints.openidConfiguration)).status, 200)
      })
    ))

  it.live("a TLS certificate or key it cannot use is an EmulatorError, not a defect; the key stays out of it", () =>
    Effect.gen(function*() {
      const key = "-----BEGIN PRIVATE KEY-----\nsecret-key-material-0123\n-----END PRIVATE KEY-----\n"
      const exit = yield* Effect.exit(
        IdentityEmulator.make({ tls: { cert: "not a certificate", key: Redacted.make(key) } }).pipe(Effect.scoped)
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isSuccess(exit)) return
      assert.strictEqual(exit.cause._tag, "Fail", String(exit.cause))
      if (exit.cause._tag !== "Fail") return
      const error = exit.cause.error
      assert.strictEqual(error._tag, "EmulatorError")
      assert.include(error.message, "TLS")
      assert.notInclude(`${error.message} ${String(error)} ${JSON.stringify(error)}`, "secret-key-material-0123")
    }).pipe(withEnv({})))

  it.live("a port that is not one is an EmulatorError, not a defect", () =>
    Effect.gen(function*() {
      for (const port of [70000, -1, 1.5]) {
        const exit = yield* Effect.exit(IdentityEmulator.make({ port }).pipe(Effect.scoped))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isSuccess(exit)) return
        assert.strictEqual(exit.cause._tag, "Fail", String(exit.cause))
        assert.include(String(exit), "port")
      }
    }).pipe(withEnv({})))
})

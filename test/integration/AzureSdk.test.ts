/**
 * The Azure SDK for JavaScript talking to fake services on loopback, with this library's credentials:
 *
 * - a real `@azure/keyvault-secrets` `SecretClient` using `AzureSdk.toTokenCredential(...)` against a fake Key Vault
 *   served over https with a test CA, while the credential itself gets its tokens from a loopback token server;
 * - a real `@azure/identity` `ClientSecretCredential` wrapped by `AzureSdk.fromTokenCredential`;
 * - `abortSignal` cancelling a request the token server never answers.
 *
 * How the Azure SDK is made to trust the test CA: its Node HTTP client (core-rest-pipeline, on
 * `@typespec/ts-http-runtime`) sends each request through `request.agent` when one is set. A per-call pipeline
 * policy given in the client's `additionalPolicies` option sets an `https.Agent` whose `ca` is the test CA, so only
 * these clients trust it: nothing global (`NODE_EXTRA_CA_CERTS`, `NODE_TLS_REJECT_UNAUTHORIZED`) is touched, and
 * certificate verification stays on (a test below shows an untrusted certificate is refused).
 */
import type { PipelineRequest, SendRequest } from "@azure/core-rest-pipeline"
import { ClientSecretCredential as AzureClientSecretCredential } from "@azure/identity"
import { SecretClient } from "@azure/keyvault-secrets"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { execFile } from "node:child_process"
import type * as http from "node:http"
import * as https from "node:https"
import { performance } from "node:perf_hooks"
import { AzureSdk, ClientSecretCredential, TokenCredential } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { envLayer, withEnv } from "../support/helpers.js"
import { listenHttps, testTls } from "../support/httpsServer.js"
import type { ServerRequest } from "../support/loopbackServer.js"
import { listen, sendJson } from "../support/loopbackServer.js"
import type { Issued } from "../support/tls.js"

const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
const CLIENT = "0b8c1d2e-0000-4000-8000-000000000001"
const SECRET = "kv-client-secret~value"
const VAULT_SCOPE = "https://vault.azure.net/.default"
const SECRET_VALUE = "the-database-password"

/** A pipeline policy routing Azure SDK requests through an agent that trusts the test CA (see the header). */
const trustCa = (caPem: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new https.Agent({ ca: caPem, keepAlive: false })),
    (agent) => Effect.sync(() => agent.destroy())
  ).pipe(Effect.map((agent) => ({
    position: "perCall" as const,
    policy: {
      name: "trustTestCa",
      sendRequest: (request: PipelineRequest, next: SendRequest) => {
        request.agent = agent
        return next(request)
      }
    }
  })))

// --- the token server our credential talks to (plain http on loopback, allowed for loopback authorities) ------------

const tokenServer = (answer?: (req: ServerRequest, res: http.ServerResponse) => boolean) =>
  listen((req, res) => {
    if (answer?.(req, res) === true) return
    if (req.url.pathname !== `/${TENANT}/oauth2/v2.0/token` || req.form.client_secret !== SECRET) {
      return sendJson(res, 401, { error: "invalid_client", error_codes: [7000215] })
    }
    const claims = req.form.claims === undefined ? {} : JSON.parse(req.form.claims)
    const token = claims.access_token?.nbf === undefined ? "kv-token" : "kv-token-after-cae"
    sendJson(res, 200, { token_type: "Bearer", expires_in: 3599, access_token: token })
  })

const ourCredential = (authorityHost: string) =>
  ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: CLIENT,
    clientSecret: Redacted.make(SECRET),
    authorityHost,
    additionallyAllowedTenants: [],
    retryPolicy: {
      maxRetries: 0,
      baseDelayMillis: 1,
      maxDelayMillis: 1,
      maxElapsedMillis: 1_000,
      attemptTimeoutMillis: 10_000,
      retryStatus: () => false
    }
  }).pipe(Layer.provide(Layer.merge(IdentityNode.layer, envLayer({}))))

/** `toTokenCredential(layer)` for the test's scope: closed when the test ends. */
const sdkCredential = (authorityHost: string) =>
  Effect.acquireRelease(
    Effect.sync(() => AzureSdk.toTokenCredential(ourCredential(authorityHost))),
    (credential) => Effect.promise(() => credential.close())
  )

// --- the fake Key Vault ---------------------------------------------------------------------------------------------

const keyVaultChallenge = (tenant = TENANT) =>
  `Bearer authorization="https://login.microsoftonline.com/${tenant}", resource="https://vault.azure.net"`

const secretBody = (vaultUrl: string) => ({
  value: SECRET_VALUE,
  id: `${vaultUrl}/secrets/db-password/0123456789abcdef`,
  attributes: { enabled: true, created: 1_764_000_000, updated: 1_764_000_000, recoveryLevel: "Recoverable" }
})

/**
 * Key Vault's protocol: a request without a token gets 401 with the challenge naming the tenant and the resource;
 * a request with the expected token gets the secret; `onAuthorized` may answer instead (CAE tests).
 */
const fakeKeyVault = (
  tls: Issued,
  options: {
    readonly tenant?: string
    readonly expectedToken?: string
    readonly onAuthorized?: (req: ServerRequest, res: http.ServerResponse, index: number) => boolean
  } = {}
) => {
  let authorized = 0
  let vaultUrl = ""
  return listenHttps(tls, (req, res) => {
    const auth = req.headers.authorization
    if (auth === undefined) {
      res.writeHead(401, { "www-authenticate": keyVaultChallenge(options.tenant), "content-type": "application/json" })
      return res.end(
        JSON.stringify({ error: { code: "Unauthorized", message: "AKV10000: Request is missing a Bearer" } })
      )
    }
    if (options.onAuthorized?.(req, res, authorized++) === true) return
    if (auth !== `Bearer ${options.expectedToken ?? "kv-token"}`) {
      res.writeHead(401, { "www-authenticate": keyVaultChallenge(options.tenant) })
      return res.end()
    }
    if (req.method === "GET" && req.url.pathname.startsWith("/secrets/db-password")) {
      return sendJson(res, 200, secretBody(vaultUrl))
    }
    sendJson(res, 404, { error: { code: "SecretNotFound", message: "not found" } })
  }).pipe(Effect.tap((server) => (vaultUrl = server.url)))
}

const secretClient = (
  vaultUrl: string,
  credential: AzureSdk.AzureTokenCredential,
  policy: Effect.Effect.Success<ReturnType<typeof trustCa>>,
  disableChallengeResourceVerification = true
) =>
  new SecretClient(vaultUrl, credential, {
    // The fake vault is https://127.0.0.1:port but its challenge names the real resource, https://vault.azure.net
    // (as Key Vault does). The SDK checks that the vault's host ends with ".vault.azure.net" unless this is set;
    // a loopback vault cannot pass that check without faking DNS, so it is off here (and a test shows the check).
    disableChallengeResourceVerification,
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [policy]
  })

const promise = <A>(f: () => Promise<A>) => Effect.promise(() => f().then(Exit.succeed, (e: unknown) => Exit.fail(e)))

const rejectionOf = <A>(exit: Exit.Exit<A, unknown>): any => {
  if (Exit.isSuccess(exit)) throw new Error("expected a rejection")
  return Option.getOrThrow(Cause.failureOption(exit.cause))
}

describe("SecretClient (@azure/keyvault-secrets) with AzureSdk.toTokenCredential", () => {
  it.live("does the Key Vault challenge dance and reads a secret; the token is cached between calls", () =>
    Effect.gen(function*() {
      const { ca, leaf } = yield* testTls()
      const tokens = yield* tokenServer()
      const vault = yield* fakeKeyVault(leaf)
      const credential = yield* sdkCredential(tokens.url)
      const client = secretClient(vault.url, credential, yield* trustCa(ca.certPem))

      const secret = yield* Effect.promise(() => client.getSecret("db-password"))
      assert.strictEqual(secret.value, SECRET_VALUE)
      assert.strictEqual(secret.name, "db-password")

      // the dance: first request without a token → 401 challenge → the same request with the token
      assert.strictEqual(vault.requests.length, 2)
      assert.isUndefined(vault.requests[0]!.headers.authorization)
      assert.strictEqual(vault.requests[1]!.headers.authorization, "Bearer kv-token")
      // our credential asked Entra (the loopback token server) for the resource the challenge named, as a CAE client
      assert.strictEqual(tokens.requests.length, 1)
      const form = tokens.requests[0]!.form
      assert.strictEqual(form.scope, VAULT_SCOPE)
      assert.strictEqual(form.grant_type, "client_credentials")
      assert.strictEqual(form.client_id, CLIENT)
      assert.deepStrictEqual(JSON.parse(form.claims!).access_token.xms_cc.values, ["CP1"])

      // a second read: the SDK asks our credential again, which answers from its cache (the layer was built once)
      const again = yield* Effect.promise(() => client.getSecret("db-password"))
      assert.strictEqual(again.value, SECRET_VALUE)
      assert.strictEqual(vault.requests.at(-1)!.headers.authorization, "Bearer kv-token")
      assert.strictEqual(tokens.requests.length, 1)
    }).pipe(Effect.scoped))

  it.live("a CAE claims challenge from the vault reaches the token request, and the read succeeds", () =>
    Effect.gen(function*() {
      const { ca, leaf } = yield* testTls()
      const tokens = yield* tokenServer()
      const claims = `{"access_token":{"nbf":{"essential":true,"value":"1764230400"}}}`
      const vault = yield* fakeKeyVault(leaf, {
        expectedToken: "kv-token-after-cae",
        onAuthorized: (_, res, index) => {
          if (index > 0) return false
          res.writeHead(401, {
            "www-authenticate": `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/` +
              `authorize", error="insufficient_claims", claims="${Buffer.from(claims).toString("base64")}"`
          })
          res.end()
          return true
        }
      })
      const credential = yield* sdkCredential(tokens.url)
      const client = secretClient(vault.url, credential, yield* trustCa(ca.certPem))
      const secret = yield* Effect.promise(() => client.getSecret("db-password"))
      assert.strictEqual(secret.value, SECRET_VALUE)
      assert.deepStrictEqual(vault.requests.map((r) => r.headers.authorization), [
        undefined,
        "Bearer kv-token",
        "Bearer kv-token-after-cae"
      ])
      assert.strictEqual(tokens.requests.length, 2)
      const sent = JSON.parse(tokens.requests[1]!.form.claims!)
      assert.deepStrictEqual(sent.access_token.nbf, { essential: true, value: "1764230400" })
      assert.deepStrictEqual(sent.access_token.xms_cc.values, ["CP1"])
    }).pipe(Effect.scoped))

  it.live("a vault in a tenant the credential does not allow: the SDK sees a CredentialUnavailableError", () =>
    Effect.gen(function*() {
      const { ca, leaf } = yield* testTls()
      const tokens = yield* tokenServer()
      const vault = yield* fakeKeyVault(leaf, { tenant: "ffffffff-0000-4000-8000-000000000000" })
      const credential = yield* sdkCredential(tokens.url)
      const client = secretClient(vault.url, credential, yield* trustCa(ca.certPem))
      const error = rejectionOf(yield* promise(() => client.getSecret("db-password")))
      assert.strictEqual(error.name, "CredentialUnavailableError")
      assert.include(error.message, "ffffffff-0000-4000-8000-000000000000")
      assert.include(error.message, "additionallyAllowedTenants")
      assert.notInclude(String(error) + JSON.stringify(error), SECRET)
      assert.strictEqual(tokens.requests.length, 0)
      assert.strictEqual(vault.requests.length, 1)
    }).pipe(Effect.scoped))

  it.live("with resource verification on, the SDK refuses a challenge for another domain: no token is sent", () =>
    Effect.gen(function*() {
      const { ca, leaf } = yield* testTls()
      const tokens = yield* tokenServer()
      const vault = yield* fakeKeyVault(leaf)
      const credential = yield* sdkCredential(tokens.url)
      const client = secretClient(vault.url, credential, yield* trustCa(ca.certPem), false)
      const error = rejectionOf(yield* promise(() => client.getSecret("db-password")))
      assert.include(error.message, "does not match the requested domain")
      assert.strictEqual(tokens.requests.length, 0)
      assert.strictEqual(vault.requests.length, 1)
    }).pipe(Effect.scoped))

  it.live("certificate verification stays on: without the CA policy the vault is refused", () =>
    Effect.gen(function*() {
      const { leaf } = yield* testTls()
      const vault = yield* fakeKeyVault(leaf)
      const credential = yield* sdkCredential("http://127.0.0.1:1")
      const client = new SecretClient(vault.url, credential, {
        disableChallengeResourceVerification: true,
        retryOptions: { maxRetries: 0 }
      })
      const error = rejectionOf(yield* promise(() => client.getSecret("db-password")))
      assert.match(
        String(error.code ?? error.message),
        /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/
      )
      assert.strictEqual(vault.requests.length, 0)
    }).pipe(Effect.scoped))
})

describe("AzureSdk.toTokenCredential: abortSignal", () => {
  it.live("abort while the token server stalls: the promise rejects with an AbortError within 100 ms", () =>
    Effect.gen(function*() {
      let arrived!: () => void
      const requestArrived = new Promise<void>((resolve) => (arrived = resolve))
      const tokens = yield* tokenServer(() => {
        arrived()
        return true // never answer
      })
      const credential = yield* sdkCredential(tokens.url)
      const controller = new AbortController()
      const pending = credential.getToken(VAULT_SCOPE, { abortSignal: controller.signal })
      // the time the promise settles, taken by the promise's own callback (not when this fiber gets to look)
      const settledAt = pending.then(() => performance.now(), () => performance.now())
      yield* Effect.promise(() => requestArrived)
      const abortedAt = performance.now()
      controller.abort()
      const error = rejectionOf(yield* promise(() => pending))
      const elapsed = (yield* Effect.promise(() => settledAt)) - abortedAt
      assert.strictEqual(error.name, "AbortError")
      assert.isBelow(elapsed, 100)
    }).pipe(Effect.scoped))

  it.live("a claims request (which no other caller shares) is cancelled on the wire when aborted", () =>
    Effect.gen(function*() {
      let arrived!: () => void
      const requestArrived = new Promise<void>((resolve) => (arrived = resolve))
      let hungUp!: () => void
      const clientHungUp = new Promise<void>((resolve) => (hungUp = resolve))
      const tokens = yield* tokenServer((_, res) => {
        res.on("close", () => hungUp())
        arrived()
        return true
      })
      const credential = yield* sdkCredential(tokens.url)
      const controller = new AbortController()
      const pending = credential.getToken(VAULT_SCOPE, { abortSignal: controller.signal, claims: "{}" })
      const settledAt = pending.then(() => performance.now(), () => performance.now())
      yield* Effect.promise(() => requestArrived)
      const abortedAt = performance.now()
      controller.abort()
      const error = rejectionOf(yield* promise(() => pending))
      assert.strictEqual(error.name, "AbortError")
      assert.isBelow((yield* Effect.promise(() => settledAt)) - abortedAt, 100)
      // the HTTP request itself was cancelled: the server sees the client close the connection
      yield* Effect.promise(() => clientHungUp)
      assert.strictEqual(tokens.requests.length, 1)
    }).pipe(Effect.scoped))
})

// --- @azure/identity → our TokenCredential -----------------------------------------------------------------------------

/** Entra, as msal-node needs it: the OpenID configuration of the tenant, and the token endpoint. */
const fakeEntraHttps = (tls: Issued, secret = SECRET) => {
  let base = ""
  return listenHttps(tls, (req, res) => {
    if (req.url.pathname === `/${TENANT}/v2.0/.well-known/openid-configuration`) {
      return sendJson(res, 200, {
        token_endpoint: `${base}/${TENANT}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/${TENANT}/oauth2/v2.0/authorize`,
        issuer: `${base}/${TENANT}/v2.0`,
        jwks_uri: `${base}/${TENANT}/discovery/v2.0/keys`
      })
    }
    const form = Object.fromEntries(new URLSearchParams(req.body))
    if (req.url.pathname !== `/${TENANT}/oauth2/v2.0/token` || form.client_secret !== secret) {
      return sendJson(res, 401, {
        error: "invalid_client",
        error_description: "AADSTS7000215: Invalid client secret provided.",
        error_codes: [7000215],
        correlation_id: "corr-123",
        trace_id: "trace-456",
        timestamp: "2026-11-27 08:00:00Z"
      })
    }
    sendJson(res, 200, { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: "msal-token" })
  }).pipe(Effect.tap((server) => (base = server.url)))
}

describe("AzureSdk.fromTokenCredential with @azure/identity", () => {
  const azureCredential = (authorityHost: string, secret: string, policy: any) =>
    new AzureClientSecretCredential(TENANT, CLIENT, secret, {
      authorityHost, // @azure/identity insists on https:, hence the https token server and the CA policy
      disableInstanceDiscovery: true, // never ask login.microsoftonline.com to validate the authority
      additionalPolicies: [policy],
      retryOptions: { maxRetries: 0 }
    })

  it.live("gets a token from a loopback Entra through @azure/identity's ClientSecretCredential", () =>
    Effect.gen(function*() {
      const { ca, leaf } = yield* testTls()
      const entra = yield* fakeEntraHttps(leaf)
      const layer = AzureSdk.fromTokenCredential(azureCredential(entra.url, SECRET, yield* trustCa(ca.certPem)))
      const token = yield* TokenCredential.getToken(VAULT_SCOPE).pipe(Effect.provide(layer))
      assert.strictEqual(Redacted.value(token.token), "msal-token")
      assert.strictEqual(String(token.token), "<redacted>")
      assert.isTrue(Option.isSome(token.refreshOn))
      const service = yield* TokenCredential.TokenCredential.pipe(Effect.provide(layer))
      assert.strictEqual(service.name, "ClientSecretCredential")
      const post = entra.requests.find((r) => r.method === "POST")!
      const form = Object.fromEntries(new URLSearchParams(post.body))
      assert.strictEqual(form.scope, VAULT_SCOPE)
      assert.strictEqual(form.grant_type, "client_credentials")
    }).pipe(Effect.scoped))

  it.live("a rejected secret is a ClientAuthenticationError with Entra's fields and without the secret", () =>
    Effect.gen(function*() {
      const { ca, leaf } = yield* testTls()
      const entra = yield* fakeEntraHttps(leaf)
      const wrong = "wrong-secret-value-123"
      const layer = AzureSdk.fromTokenCredential(azureCredential(entra.url, wrong, yield* trustCa(ca.certPem)))
      const exit = yield* Effect.exit(TokenCredential.getToken(VAULT_SCOPE).pipe(Effect.provide(layer)))
      const error = rejectionOf(exit)
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.strictEqual(error.status, 401)
      assert.strictEqual(error.error, "invalid_client")
      assert.include(error.message, "Correlation ID: corr-123")
      assert.include(error.message, "AADSTS7000215")
      assert.notInclude(error.message + String(error) + JSON.stringify(error), wrong)
    }).pipe(Effect.scoped))
})

// --- createCredential(): DefaultAzureCredential for Promise code -----------------------------------------------------

/**
 * Runs a Promise-only program in a child Node process whose environment is exactly `env` (this test process never
 * reads or changes its own environment). The child loads the network guard too, so whatever the chain tries stays
 * on loopback.
 */
const runChild = (env: Record<string, string>, wrongSecret: string) =>
  Effect.async<Array<Array<any>>>((resume) => {
    const program = `
      const { AzureSdk } = await import(${JSON.stringify(new URL("../../src/index.ts", import.meta.url).pathname)})
      const results = []
      for (const secret of [process.env.AZURE_CLIENT_SECRET, ${JSON.stringify(wrongSecret)}]) {
        process.env.AZURE_CLIENT_SECRET = secret // the child's own environment, read when the layer is built
        const credential = AzureSdk.createCredential()
        const out = []
        for (let i = 0; i < 2; i++) {
          try {
            const t = await credential.getToken("${VAULT_SCOPE}")
            out.push({ ok: true, token: t.token, expiresOnTimestamp: t.expiresOnTimestamp, tokenType: t.tokenType })
          } catch (e) {
            out.push({ ok: false, name: e.name, message: e.message, text: String(e) + JSON.stringify(e) })
          }
        }
        await credential.close()
        results.push(out)
      }
      console.log(JSON.stringify(results))
    `
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "--import", "./test/support/networkGuard.ts", "--input-type=module", "-e", program],
      { cwd: process.cwd(), env, timeout: 25_000 },
      (error, stdout, stderr) => {
        if (error !== null) return resume(Effect.die(new Error(`child failed: ${error.message}\n${stderr}`)))
        resume(Effect.succeed(JSON.parse(stdout.trim().split("\n").at(-1)!)))
      }
    )
    return Effect.sync(() => child.kill())
  })

describe("AzureSdk.createCredential() (DefaultAzureCredential) in a plain Promise program", () => {
  it.live(
    "configured by the environment with a client secret: gets and caches a token; a wrong secret fails",
    () =>
      Effect.gen(function*() {
        const tokens = yield* tokenServer()
        const wrong = "wrong-env-secret-456"
        const [ok, failed] = yield* runChild({
          AZURE_TENANT_ID: TENANT,
          AZURE_CLIENT_ID: CLIENT,
          AZURE_CLIENT_SECRET: SECRET,
          AZURE_AUTHORITY_HOST: tokens.url,
          HOME: "/nonexistent-home-for-test"
        }, wrong)
        assert.deepStrictEqual(ok!.map((r) => r.ok), [true, true])
        assert.strictEqual(ok![0].token, "kv-token")
        assert.strictEqual(ok![0].tokenType, "Bearer")
        assert.isAbove(ok![0].expiresOnTimestamp, Date.UTC(2020, 0, 1))
        // one token request for the two calls: the layer was built once and its cache kept
        const good = tokens.requests.filter((r) => r.form.client_secret === SECRET)
        assert.strictEqual(good.length, 1)
        assert.strictEqual(good[0]!.url.pathname, `/${TENANT}/oauth2/v2.0/token`)
        assert.strictEqual(good[0]!.form.scope, VAULT_SCOPE)

        // a wrong secret stops the chain at EnvironmentCredential; the error names it and never echoes the secret
        assert.isFalse(failed![0].ok)
        assert.strictEqual(failed![0].name, "AggregateAuthenticationError")
        assert.include(failed![0].message, "EnvironmentCredential")
        assert.notInclude(failed![0].text, wrong)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("defaultNodeLayer is DefaultAzureCredential on Node: the same flow in-process, configured by a map", () =>
    Effect.gen(function*() {
      const tokens = yield* tokenServer()
      const token = yield* TokenCredential.getToken(VAULT_SCOPE).pipe(
        Effect.provide(AzureSdk.defaultNodeLayer),
        withEnv({
          AZURE_TENANT_ID: TENANT,
          AZURE_CLIENT_ID: CLIENT,
          AZURE_CLIENT_SECRET: SECRET,
          AZURE_AUTHORITY_HOST: tokens.url,
          AZURE_TOKEN_CREDENTIALS: "EnvironmentCredential"
        })
      )
      assert.strictEqual(Redacted.value(token.token), "kv-token")
      assert.strictEqual(tokens.requests.length, 1)
    }).pipe(Effect.scoped))
})

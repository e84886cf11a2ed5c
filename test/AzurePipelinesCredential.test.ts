/**
 * AzurePipelinesCredential: against a mock HttpClient (OIDC request shape, one fresh OIDC token per network token
 * request, none on a cache hit, errors that say what to fix), and against a loopback server with the real
 * NodeHttpClient.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { AzurePipelinesCredential, TokenCredential } from "../src/index.js"
import type { IdentityError } from "../src/index.js"
import * as IdentityNode from "../src/node.js"
import { assertNoSecret, failureOf, setNow, withCredentialOver, withEnv } from "./support/helpers.js"
import { listen } from "./support/loopbackServer.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, mockHttp, text, tokenBody } from "./support/mockHttp.js"

const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const CONNECTION = "cccccccc-0000-1111-2222-333333333333"
const SCOPE = "https://management.azure.com/.default"
const AUTHORITY = "https://login.example.test"
const OIDC_URI = "https://dev.azure.com/contoso/p1/_apis/distributedtask/hubs/build/plans/plan-1/jobs/job-1/oidctoken"
const SYSTEM_TOKEN = "system-access-token-SECRET"
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const options = (over: Partial<AzurePipelinesCredential.Options> = {}): AzurePipelinesCredential.Options => ({
  tenantId: TENANT,
  clientId: CLIENT,
  serviceConnectionId: CONNECTION,
  systemAccessToken: Redacted.make(SYSTEM_TOKEN),
  authorityHost: AUTHORITY,
  ...over
})

const isOidc = (request: Recorded) => request.url.pathname.endsWith("/oidctoken")

/** OIDC answers `oidc-1`, `oidc-2`, …; the token endpoint answers `tok-<n>`. */
const pipelineHandler = () => {
  let oidc = 0
  let token = 0
  return (request: Recorded): Answer =>
    isOidc(request)
      ? json(200, { oidcToken: `oidc-${++oidc}` })
      : json(200, tokenBody(`tok-${++token}`))
}

const withPipelines = <A, E>(
  handler: (request: Recorded, index: number) => Answer,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  over: Partial<AzurePipelinesCredential.Options> = {},
  env: Record<string, string> = { SYSTEM_OIDCREQUESTURI: OIDC_URI }
) => withCredentialOver(AzurePipelinesCredential.layer(options(over)), handler, f, { env })

const errorOf = (exit: Parameters<typeof failureOf>[0]) => {
  const error = failureOf(exit) as IdentityError.IdentityError
  assertNoSecret(error, SYSTEM_TOKEN)
  return error
}

describe("AzurePipelinesCredential with a mock HttpClient", () => {
  it.effect("POSTs the OIDC request, then sends its oidcToken as the client assertion", () =>
    withPipelines(pipelineHandler(), (credential, requests) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(Redacted.value(token.token), "tok-1")
        assert.strictEqual(requests.length, 2)
        const oidc = requests[0]!
        assert.strictEqual(oidc.method, "POST")
        assert.strictEqual(oidc.url.origin + oidc.url.pathname, OIDC_URI)
        assert.deepStrictEqual(Object.fromEntries(oidc.url.searchParams), {
          "api-version": "7.1",
          serviceConnectionId: CONNECTION
        })
        assert.strictEqual(oidc.headers.authorization, `Bearer ${SYSTEM_TOKEN}`)
        assert.strictEqual(oidc.headers["content-type"], "application/json")
        assert.strictEqual(oidc.headers["x-tfs-fedauthredirect"], "Suppress")
        assert.strictEqual(oidc.body, "")
        const tokenRequest = requests[1]!
        assert.strictEqual(tokenRequest.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
        assert.deepStrictEqual(tokenRequest.form, {
          client_id: CLIENT,
          grant_type: "client_credentials",
          client_assertion: "oidc-1",
          client_assertion_type: ASSERTION_TYPE,
          scope: SCOPE
        })
        assert.isUndefined(tokenRequest.headers.authorization)
      })))

  it.effect("a fresh OIDC token for every network token request, none on a cache hit", () =>
    withPipelines(pipelineHandler(), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        yield* credential.getToken(SCOPE)
        assert.strictEqual(requests.length, 2)
        yield* credential.getToken("https://vault.azure.net/.default")
        assert.strictEqual(requests.length, 4)
        assert.strictEqual(requests[2]!.url.pathname.endsWith("/oidctoken"), true)
        assert.strictEqual(requests[3]!.form.client_assertion, "oidc-2")
        // a claims challenge always goes to the network: a third OIDC token
        yield* credential.getToken(SCOPE, { claims: "{\"access_token\":{}}" })
        assert.strictEqual(requests[5]!.form.client_assertion, "oidc-3")
      })))

  it.effect("a refused token request is held for a while, never its OIDC token: the next request gets a fresh one", () =>
    withPipelines(
      (() => {
        const next = pipelineHandler()
        let tokenCalls = 0
        return (request: Recorded): Answer =>
          !isOidc(request) && tokenCalls++ === 0 ? json(400, { error: "invalid_request" }) : next(request)
      })(),
      (credential, requests) =>
        Effect.gen(function*() {
          const error = errorOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          // the refusal is held (30 s by default): no second request, and no OIDC token spent on it
          const held = errorOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(held._tag, "ClientAuthenticationError")
          assert.strictEqual(requests.length, 2)
          yield* TestClock.adjust("31 seconds")
          yield* credential.getToken(SCOPE)
          const assertions = requests.filter((r) => !isOidc(r)).map((r) => r.form.client_assertion)
          assert.deepStrictEqual(assertions, ["oidc-1", "oidc-2"])
        })
    ))

  it.effect("a transient OIDC answer (503) is retried after a delay", () =>
    withPipelines(
      (() => {
        const next = pipelineHandler()
        let oidcCalls = 0
        return (request: Recorded): Answer =>
          isOidc(request) && oidcCalls++ === 0 ? json(503, { message: "busy" }) : next(request)
      })(),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(credential.getToken(SCOPE))
          yield* TestClock.adjust("100 millis")
          assert.strictEqual(requests.length, 1, "waits before retrying")
          yield* TestClock.adjust("5 seconds")
          const token = yield* Fiber.join(fiber)
          assert.strictEqual(Redacted.value(token.token), "tok-1")
          assert.deepStrictEqual(requests.map((r) => isOidc(r)), [true, true, false])
        })
    ))

  it.effect("401, 403, 404, HTML, not JSON, no oidcToken: errors that say what to fix, no token request", () =>
    Effect.gen(function*() {
      const cases: Array<[Response, string]> = [
        [
          json(401, { message: "TF400813: The user '' is not authorized to access this resource." }),
          "the system access token is missing, expired"
        ],
        [
          json(403, { message: `The pipeline is not authorized to use service connection 'sc' (${CONNECTION}).` }),
          `the pipeline has no permission to use the service connection ${CONNECTION}`
        ],
        [json(404, {}), "no service connection"],
        [text(203, "<!DOCTYPE html><html><title>Sign in</title></html>"), "HTML page"],
        [text(200, "<html>oops</html>", "text/plain"), "HTML page"],
        [text(200, "not json", "text/plain"), "not JSON"],
        [json(200, { token: "x" }), "no oidcToken"],
        [json(200, { oidcToken: "" }), "no oidcToken"],
        [json(400, { message: "bad" }), "HTTP 400: Azure DevOps refused the request Azure DevOps said: bad"]
      ]
      for (const [answer, expected] of cases) {
        yield* withPipelines(() => answer.clone(), (credential, requests) =>
          Effect.gen(function*() {
            const error = errorOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, expected)
            assert.strictEqual(requests.length, 1)
          }))
      }
    }))

  it.effect("401 carries Azure DevOps' message and support ids", () =>
    withPipelines(
      () =>
        new Response(JSON.stringify({ message: "TF400813: not authorized" }), {
          status: 401,
          headers: { "content-type": "application/json", "x-vss-e2eid": "e2e-1" }
        }),
      (credential) =>
        Effect.gen(function*() {
          const error = errorOf(
            yield* Effect.exit(credential.getToken(SCOPE))
          ) as IdentityError.ClientAuthenticationError
          assert.strictEqual(error.status, 401)
          assert.include(error.reason, "Azure DevOps said: TF400813: not authorized (x-vss-e2eid: e2e-1)")
        })
    ))

  it.effect("missing settings are CredentialUnavailableError before any request", () =>
    Effect.gen(function*() {
      const cases: Array<[Partial<AzurePipelinesCredential.Options>, Record<string, string>, string]> = [
        [{}, {}, "SYSTEM_OIDCREQUESTURI is not set"],
        [{ serviceConnectionId: " " }, { SYSTEM_OIDCREQUESTURI: OIDC_URI }, "the service connection id was not"],
        [{ systemAccessToken: Redacted.make("") }, { SYSTEM_OIDCREQUESTURI: OIDC_URI }, "SYSTEM_ACCESSTOKEN"],
        [{ tenantId: "" }, { SYSTEM_OIDCREQUESTURI: OIDC_URI }, "no tenant id"],
        [{}, { SYSTEM_OIDCREQUESTURI: "http://dev.azure.com/x/oidctoken" }, "must use https:"],
        [{}, { SYSTEM_OIDCREQUESTURI: "not a url" }, "not a valid URL"],
        [{ oidcRequestUri: "https://user:pw@dev.azure.com/x" }, {}, "must not contain credentials"]
      ]
      for (const [over, env, expected] of cases) {
        yield* withPipelines(
          () => json(500, {}),
          (credential, requests) =>
            Effect.gen(function*() {
              const error = errorOf(yield* Effect.exit(credential.getToken(SCOPE)))
              assert.strictEqual(error._tag, "CredentialUnavailableError")
              assert.include(error.message, expected)
              assert.strictEqual(requests.length, 0)
            }),
          over,
          env
        )
      }
    }))

  it.effect("the service connection id is encoded in the query", () =>
    withPipelines(
      pipelineHandler(),
      (_credential, requests) =>
        Effect.gen(function*() {
          yield* _credential.getToken(SCOPE)
          assert.strictEqual(requests[0]!.url.searchParams.get("serviceConnectionId"), "a&b=c")
          assert.strictEqual(requests[0]!.url.searchParams.get("api-version"), "7.1")
        }),
      { serviceConnectionId: "a&b=c", oidcRequestUri: `${OIDC_URI}/` },
      {}
    ))

  it.effect("layerConfig reads the AzureCLI@2 task variables and SYSTEM_ACCESSTOKEN", () => {
    const http = mockHttp(pipelineHandler())
    return Effect.gen(function*() {
      yield* setNow
      yield* TokenCredential.getToken(SCOPE)
      assert.strictEqual(http.requests[0]!.url.searchParams.get("serviceConnectionId"), CONNECTION)
      assert.strictEqual(http.requests[0]!.headers.authorization, `Bearer ${SYSTEM_TOKEN}`)
      assert.strictEqual(http.requests[1]!.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
      assert.strictEqual(http.requests[1]!.form.client_id, CLIENT)
    }).pipe(
      Effect.provide(AzurePipelinesCredential.layerConfig().pipe(Layer.provide(http.layer))),
      withEnv({
        AZURESUBSCRIPTION_TENANT_ID: TENANT,
        AZURESUBSCRIPTION_CLIENT_ID: CLIENT,
        AZURESUBSCRIPTION_SERVICE_CONNECTION_ID: CONNECTION,
        SYSTEM_ACCESSTOKEN: SYSTEM_TOKEN,
        SYSTEM_OIDCREQUESTURI: OIDC_URI,
        AZURE_AUTHORITY_HOST: AUTHORITY
      })
    )
  })
})

describe("AzurePipelinesCredential against a loopback server", () => {
  it.live("OIDC request and token request over real HTTP", () =>
    Effect.scoped(Effect.gen(function*() {
      let oidc = 0
      const server = yield* listen((request, res) => {
        if (request.url.pathname.endsWith("/oidctoken")) {
          if (request.headers.authorization !== `Bearer ${SYSTEM_TOKEN}`) {
            res.writeHead(401, { "content-type": "application/json" })
            res.end(JSON.stringify({ message: "TF400813: The user '' is not authorized to access this resource." }))
            return
          }
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({ oidcToken: `oidc-${++oidc}` }))
          return
        }
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify(tokenBody(`tok-for-${request.form.client_assertion}`)))
      })
      const base = `${server.url}/contoso/p1/_apis/distributedtask/hubs/build/plans/plan-1/jobs/job-1/oidctoken`
      const layerFor = (systemAccessToken: string) =>
        AzurePipelinesCredential.layer(options({
          authorityHost: server.url,
          oidcRequestUri: base,
          systemAccessToken: Redacted.make(systemAccessToken)
        })).pipe(Layer.provide(IdentityNode.layer))
      const token = yield* TokenCredential.getToken(SCOPE).pipe(Effect.provide(layerFor(SYSTEM_TOKEN)), withEnv({}))
      assert.strictEqual(Redacted.value(token.token), "tok-for-oidc-1")
      assert.strictEqual(server.requests[0]!.method, "POST")
      assert.strictEqual(server.requests[0]!.url.search, `?api-version=7.1&serviceConnectionId=${CONNECTION}`)
      assert.strictEqual(server.requests[1]!.url.pathname, `/${TENANT}/oauth2/v2.0/token`)
      const refused = yield* Effect.exit(
        TokenCredential.getToken(SCOPE).pipe(Effect.provide(layerFor("wrong")), withEnv({}))
      )
      const error = errorOf(refused)
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, "HTTP 401: the system access token is missing, expired")
      assert.include(error.message, "TF400813")
      assert.strictEqual(server.requests.length, 3)
    })))
})

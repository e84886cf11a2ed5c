import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { TokenCredential, WorkloadIdentityCredential } from "../src/index.js"
import { assertNoSecret, failureOf, memoryFs, setNow, withCredentialOver, withEnv } from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { dieHttp, json, mockHttp, tokenBody } from "./support/mockHttp.js"

const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const SCOPE = "https://vault.azure.net/.default"
const AUTHORITY = "https://login.example.test"
const TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"
const FEDERATED = "eyJhbGciOiJSUzI1NiJ9.federated-token-1.signature"

const env = {
  AZURE_TENANT_ID: TENANT,
  AZURE_CLIENT_ID: CLIENT,
  AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE,
  AZURE_AUTHORITY_HOST: AUTHORITY
}

const withCredential = <A, E>(
  credentialLayer: Layer.Layer<
    TokenCredential.TokenCredential,
    never,
    HttpClient.HttpClient | FileSystem.FileSystem
  >,
  files: Map<string, string>,
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>, reads: Array<string>) => Effect.Effect<A, E>,
  environment: Record<string, string> = env
) => {
  const memory = memoryFs(files)
  return withCredentialOver(credentialLayer, handler, (credential, requests) => f(credential, requests, memory.reads), {
    env: environment,
    deps: (http) => Layer.merge(http.layer, memory.layer)
  })
}

describe("WorkloadIdentityCredential", () => {
  it.effect("sends the federated token (trimmed) as the client assertion, configured by AZURE_* variables", () =>
    withCredential(
      WorkloadIdentityCredential.layer(),
      new Map([[TOKEN_FILE, `\n  ${FEDERATED}  \n`]]),
      () => json(200, tokenBody("tok-1")),
      (credential, requests) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(Redacted.value(token.token), "tok-1")
          assert.strictEqual(requests[0]!.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
          assert.deepStrictEqual(requests[0]!.form, {
            client_id: CLIENT,
            grant_type: "client_credentials",
            client_assertion: FEDERATED,
            client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            scope: SCOPE
          })
        })
    ))

  it.effect("re-reads the file for every network request (a rotated token is used), never on a cache hit", () => {
    const files = new Map([[TOKEN_FILE, "federated-1"]])
    return withCredential(
      WorkloadIdentityCredential.layer(),
      files,
      (_, i) => json(200, tokenBody(`tok-${i + 1}`)),
      (credential, requests, reads) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.strictEqual(reads.length, 1)
          files.set(TOKEN_FILE, "federated-2") // kubelet rotates the projected token
          yield* TestClock.adjust("10 minutes")
          yield* credential.getToken(SCOPE)
          assert.strictEqual(reads.length, 1) // cache hit: the file is not touched
          yield* credential.getToken("https://graph.microsoft.com/.default")
          assert.strictEqual(reads.length, 2)
          // the 1 h token expires: the next request reads the file again
          files.set(TOKEN_FILE, "federated-3\n")
          yield* TestClock.adjust("1 hour")
          const refreshed = yield* credential.getToken(SCOPE)
          assert.strictEqual(Redacted.value(refreshed.token), "tok-3")
          assert.deepStrictEqual(requests.map((r) => r.form.client_assertion), [
            "federated-1",
            "federated-2",
            "federated-3"
          ])
        })
    )
  })

  it.effect("options override the environment", () =>
    withCredential(
      WorkloadIdentityCredential.layer({
        tenantId: "contoso.onmicrosoft.com",
        clientId: "opt-client",
        tokenFilePath: "/t"
      }),
      new Map([["/t", "from-option"]]),
      () => json(200, tokenBody()),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.strictEqual(requests[0]!.url.pathname, "/contoso.onmicrosoft.com/oauth2/v2.0/token")
          assert.strictEqual(requests[0]!.form.client_id, "opt-client")
          assert.strictEqual(requests[0]!.form.client_assertion, "from-option")
        })
    ))

  const missingCases: ReadonlyArray<[string, Record<string, string>, ReadonlyArray<string>, ReadonlyArray<string>]> = [
    ["nothing set", {}, ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"], []],
    ["no token file", { AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT }, ["AZURE_FEDERATED_TOKEN_FILE"], [
      "AZURE_TENANT_ID",
      "AZURE_CLIENT_ID"
    ]],
    [
      "empty variables count as unset",
      { AZURE_TENANT_ID: "", AZURE_CLIENT_ID: " ", AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE },
      ["AZURE_TENANT_ID", "AZURE_CLIENT_ID"],
      ["AZURE_FEDERATED_TOKEN_FILE"]
    ]
  ]
  for (const [name, environment, named, notNamed] of missingCases) {
    it.effect(`missing configuration (${name}) is CredentialUnavailableError naming exactly what is missing`, () =>
      Effect.gen(function*() {
        const error = yield* TokenCredential.getToken(SCOPE).pipe(
          Effect.provide(
            WorkloadIdentityCredential.layer().pipe(Layer.provide(Layer.merge(dieHttp, memoryFs(new Map()).layer)))
          ),
          Effect.exit,
          Effect.map(failureOf),
          withEnv(environment)
        )
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        for (const n of named) assert.include(error.message, n)
        for (const n of notNamed) assert.notInclude(error.message, n)
      }))
  }

  const fileCases: ReadonlyArray<[string, Map<string, string>, string]> = [
    ["a missing token file", new Map(), `the federated token file ${TOKEN_FILE} could not be read (it does not exist)`],
    ["an unreadable token file", new Map([[TOKEN_FILE, "<denied>"]]), "could not be read (permission denied)"],
    ["an empty token file", new Map([[TOKEN_FILE, ""]]), `the federated token file ${TOKEN_FILE} is empty`],
    ["a whitespace-only token file", new Map([[TOKEN_FILE, " \n\t\n"]]), "is empty"]
  ]
  for (const [name, files, expected] of fileCases) {
    it.effect(`${name} is CredentialUnavailableError; nothing is sent`, () =>
      withCredential(
        WorkloadIdentityCredential.layer(),
        files,
        () => json(200, tokenBody()),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.strictEqual(error.credential, "WorkloadIdentityCredential")
            assert.include(error.message, expected)
            assert.strictEqual(requests.length, 0)
          })
      ))
  }

  it.effect("AADSTS700024 (token outside its validity window) is ClientAuthenticationError with a hint", () =>
    withCredential(
      WorkloadIdentityCredential.layer(),
      new Map([[TOKEN_FILE, FEDERATED]]),
      () =>
        json(400, {
          error: "invalid_client",
          error_description: "AADSTS700024: Client assertion is not within its valid time range. Current time: …",
          error_codes: [700024],
          correlation_id: "corr-1"
        }),
      (credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          assert.include(error.message, "AADSTS700024")
          assert.include(error.message, "outside its validity window")
          assert.include(error.message, "federated token file is fresh")
          assertNoSecret(error, FEDERATED)
        })
    ))

  it.effect("layerConfig reads the Config it is given, without falling back to AZURE_*", () =>
    Effect.gen(function*() {
      const layer = WorkloadIdentityCredential.layerConfig({
        tenantId: Config.string("MY_TENANT"),
        clientId: Config.string("MY_CLIENT"),
        tokenFilePath: Config.string("MY_TOKEN_FILE").pipe(Config.withDefault(""))
      })
      const files = new Map([["/my/token", "my-token"]])
      const ok = yield* withCredential(layer, files, () =>
        json(200, tokenBody("cfg")), (credential, requests) =>
        Effect.map(credential.getToken(SCOPE), () =>
          requests[0]!.form), {
        ...env,
        MY_TENANT: "my-tenant",
        MY_CLIENT: "my-client",
        MY_TOKEN_FILE: "/my/token"
      })
      assert.strictEqual(ok.client_id, "my-client")
      assert.strictEqual(ok.client_assertion, "my-token")
      const error = yield* withCredential(layer, files, () =>
        json(200, tokenBody()), (credential) =>
        Effect.map(Effect.exit(credential.getToken(SCOPE)), failureOf), {
        ...env,
        MY_TENANT: "my-tenant",
        MY_CLIENT: "my-client"
      })
      assert.include(error.message, "missing configuration: AZURE_FEDERATED_TOKEN_FILE (tokenFilePath option)")
      const missing = yield* withCredential(layer, files, () =>
        json(200, tokenBody()), (credential) =>
        Effect.map(Effect.exit(credential.getToken(SCOPE)), failureOf), env)
      assert.include(missing.message, "missing configuration: MY_TENANT, MY_CLIENT")
    }))

  it.effect("layerConfig() defaults to the AZURE_* variables", () =>
    withCredential(
      WorkloadIdentityCredential.layerConfig(),
      new Map([[TOKEN_FILE, FEDERATED]]),
      () => json(200, tokenBody("dflt")),
      (credential) => Effect.map(credential.getToken(SCOPE), (t) => assert.strictEqual(Redacted.value(t.token), "dflt"))
    ))

  it.effect("reads a real file (NodeFileSystem) and sees it rotate", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(nodePath.join(os.tmpdir(), "eai-wi-"))),
        (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
      )
      const path = nodePath.join(dir, "azure-identity-token")
      fs.writeFileSync(path, "real-1\n")
      const http = mockHttp(() => json(200, tokenBody()))
      yield* setNow
      yield* Effect.gen(function*() {
        const credential = yield* TokenCredential.TokenCredential
        yield* credential.getToken(SCOPE)
        fs.writeFileSync(path, "real-2\n")
        yield* credential.getToken("https://graph.microsoft.com/.default")
        assert.deepStrictEqual(http.requests.map((r) => r.form.client_assertion), ["real-1", "real-2"])
      }).pipe(
        Effect.provide(
          WorkloadIdentityCredential.layer({ tokenFilePath: path }).pipe(
            Layer.provide(Layer.merge(http.layer, NodeFileSystem.layer))
          )
        ),
        withEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT, AZURE_AUTHORITY_HOST: AUTHORITY })
      )
    }).pipe(Effect.scoped))
})

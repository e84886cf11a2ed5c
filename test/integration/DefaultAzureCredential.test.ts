/**
 * DefaultAzureCredential end to end with the real Node services (HttpClient, FileSystem, CommandExecutor) against
 * loopback servers started by the tests.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { DefaultAzureCredential, TokenCredential } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { withEnv } from "../support/helpers.js"
import { listen, sendJson } from "../support/loopbackServer.js"

const SCOPE = "https://vault.azure.net/.default"
const SECRET = "integration-dac-secret"
const IDENTITY_HEADER = "identity-header-secret"

let home: string
let emptyBin: string
beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "effect-azure-identity-dac-"))
  emptyBin = path.join(home, "bin")
  fs.mkdirSync(emptyBin)
})
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

/** Hermetic options: IMDS at `imds`, no Arc agent, `az` / `pwsh` / `azd` looked up in an empty directory. */
const hermetic = (imds: string): DefaultAzureCredential.Options => ({
  managedIdentity: { imdsEndpoint: imds, azureArc: { himdsPaths: [] } },
  azureCli: { environment: { PATH: emptyBin } },
  azurePowerShell: { environment: { PATH: emptyBin } },
  azureDeveloperCli: { environment: { PATH: emptyBin } }
})

const dac = (options: DefaultAzureCredential.Options) =>
  DefaultAzureCredential.layer(options).pipe(Layer.provide(IdentityNode.layer))

/** A TCP server that accepts connections and never answers (an IMDS that hangs). */
const silentServer = Effect.acquireRelease(
  Effect.async<{ server: net.Server; sockets: Set<net.Socket>; url: string }>((resume) => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((s) => {
      sockets.add(s)
      s.on("close", () => sockets.delete(s))
    })
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({
        server,
        sockets,
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
      })))
  }),
  ({ server, sockets }) =>
    Effect.async<void>((resume) => {
      for (const s of sockets) s.destroy()
      server.close(() => resume(Effect.void))
    })
)

/** A port on 127.0.0.1 nobody listens on. */
const closedPort = Effect.async<string>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(`http://127.0.0.1:${port}`)))
  })
})

const failureOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  return Option.getOrThrowWith(Cause.failureOption(exit.cause), () => new Error(Cause.pretty(exit.cause))) as any
}

describe("DefaultAzureCredential over loopback (real Node services)", () => {
  it.live("a client secret from the environment", () =>
    Effect.gen(function*() {
      const imds = yield* silentServer
      const server = yield* listen((req, res) =>
        req.form.client_secret === SECRET
          ? sendJson(res, 200, { token_type: "Bearer", expires_in: 3599, access_token: "env-token" })
          : sendJson(res, 401, { error: "invalid_client" })
      )
      const token = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.provide(dac(hermetic(imds.url))),
        withEnv({
          HOME: home,
          AZURE_TENANT_ID: "contoso.onmicrosoft.com",
          AZURE_CLIENT_ID: "app-1",
          AZURE_CLIENT_SECRET: SECRET,
          AZURE_AUTHORITY_HOST: server.url
        })
      )
      assert.strictEqual(Redacted.value(token.token), "env-token")
      assert.strictEqual(server.requests.length, 1)
      assert.strictEqual(server.requests[0]!.url.pathname, "/contoso.onmicrosoft.com/oauth2/v2.0/token")
    }).pipe(Effect.scoped))

  it.live("managed identity through IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service)", () =>
    Effect.gen(function*() {
      const imds = yield* silentServer
      const server = yield* listen((req, res) =>
        req.headers["x-identity-header"] === IDENTITY_HEADER
          ? sendJson(res, 200, {
            access_token: "mi-token",
            expires_on: String(Math.floor(Date.now() / 1000) + 3600),
            resource: req.url.searchParams.get("resource"),
            token_type: "Bearer"
          })
          : sendJson(res, 401, { error: "bad header" })
      )
      const token = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.provide(dac(hermetic(imds.url))),
        withEnv({ HOME: home, IDENTITY_ENDPOINT: `${server.url}/msi/token`, IDENTITY_HEADER })
      )
      assert.strictEqual(Redacted.value(token.token), "mi-token")
      assert.strictEqual(server.requests.length, 1)
      const r = server.requests[0]!
      assert.strictEqual(r.url.pathname, "/msi/token")
      assert.strictEqual(r.url.searchParams.get("api-version"), "2019-08-01")
      assert.strictEqual(r.url.searchParams.get("resource"), "https://vault.azure.net")
    }).pipe(Effect.scoped))

  it.live("nothing configured, IMDS silent: every link reported in well under 2 s", () =>
    Effect.gen(function*() {
      const imds = yield* silentServer
      const started = Date.now()
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(
        Effect.provide(dac(hermetic(imds.url))),
        withEnv({ HOME: home })
      )
      const elapsed = Date.now() - started
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "ChainedAuthenticationError")
      assert.deepStrictEqual(error.errors.map((e: any) => e.credential), [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
        "SharedTokenCacheCredential",
        "AzureCliCredential",
        "AzurePowerShellCredential",
        "AzureDeveloperCliCredential"
      ])
      assert.include(error.errors[2].reason, "did not answer the probe within 1000 ms")
      assert.include(error.errors[4].reason, "was not found on PATH")
      assert.include(error.errors[5].reason, "(pwsh) was not found on PATH")
      assert.isBelow(elapsed, 2_000)
    }).pipe(Effect.scoped))

  it.live("nothing configured, IMDS port closed: every link reported at once", () =>
    Effect.gen(function*() {
      const imds = yield* closedPort
      const started = Date.now()
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(
        Effect.provide(dac(hermetic(imds))),
        withEnv({ HOME: home })
      )
      const elapsed = Date.now() - started
      const error = failureOf(exit)
      assert.strictEqual(error.errors.length, 7)
      assert.include(error.errors[2].reason, "could not be reached")
      assert.isBelow(elapsed, 1_500)
    }))
})

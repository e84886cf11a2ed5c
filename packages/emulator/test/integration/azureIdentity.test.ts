/**
 * The emulator works for a client this project did not write: `@azure/identity`'s `ClientSecretCredential`
 * (`disableInstanceDiscovery: true`) and `ManagedIdentityCredential` (App Service via `IDENTITY_ENDPOINT`).
 *
 * `@azure/identity` (through MSAL) refuses an `http:` authority, so the emulator serves https with a leaf certificate
 * issued by a CA made for this run (test/support/tls.ts). Node reads extra trusted CAs only at start-up
 * (`NODE_EXTRA_CA_CERTS`), and `@azure/identity` builds its own https agent, so each client runs in a child process
 * started with `NODE_EXTRA_CA_CERTS` pointing at the CA's PEM; nothing in this process trusts the test CA, and no
 * TLS check is disabled. The child (test/support/azureIdentityChild.mjs) prints its outcome as one JSON line; its
 * environment holds only what the test gives it, all addresses are the emulator's on 127.0.0.1.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { guardedNodeArgs, withEnv } from "../../../../test/support/helpers.js"
import { makeCertificateAuthority } from "../../../../test/support/tls.js"
import * as IdentityEmulator from "../../src/IdentityEmulator.js"

const child = path.resolve(import.meta.dirname, "../../../../test/support/azureIdentityChild.mjs")

const runChild = (env: Record<string, string>) =>
  Effect.async<{ ok: boolean; token?: string; name?: string; message?: string }>((resume) => {
    execFile(process.execPath, [...guardedNodeArgs, child], {
      env: { PATH: process.env.PATH ?? "", ...env },
      timeout: 60_000
    }, (
      error,
      stdout,
      stderr
    ) => {
      const line = stdout.trim().split("\n").pop() ?? ""
      try {
        resume(Effect.succeed(JSON.parse(line)))
      } catch {
        resume(Effect.die(new Error(`child failed: ${String(error)}\n${stdout}\n${stderr}`)))
      }
    })
  })

describe("@azure/identity against the emulator (https with a test CA)", () => {
  it.live(
    "ClientSecretCredential and ManagedIdentityCredential get tokens; a wrong secret gets AADSTS7000215",
    () =>
      Effect.gen(function*() {
        const ca = yield* Effect.promise(() => makeCertificateAuthority())
        const leaf = yield* Effect.promise(() =>
          ca.issue({ commonName: "localhost", hosts: ["127.0.0.1", "localhost"] })
        )
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "emulator-ca-"))),
          (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
        )
        const caFile = path.join(dir, "ca.pem")
        fs.writeFileSync(caFile, ca.certPem)
        const emulator = yield* IdentityEmulator.make({ tls: { cert: leaf.certPem, key: leaf.keyPem } })
        assert.isTrue(emulator.url.startsWith("https://127.0.0.1:"))
        const base = {
          NODE_EXTRA_CA_CERTS: caFile,
          DEMO_TENANT_ID: emulator.tenantId,
          DEMO_CLIENT_ID: emulator.clientId,
          DEMO_AUTHORITY_HOST: emulator.url
        }
        const secret = emulator.env.AZURE_CLIENT_SECRET!

        const [app, managed, wrong] = yield* Effect.all([
          runChild({ ...base, DEMO_MODE: "client-secret", DEMO_CLIENT_SECRET: secret }),
          runChild({ ...base, DEMO_MODE: "managed-identity", ...emulator.envFor("app-service-2019") }),
          runChild({ ...base, DEMO_MODE: "client-secret", DEMO_CLIENT_SECRET: "not-the-secret" })
        ], { concurrency: "unbounded" })

        assert.isTrue(app.ok, JSON.stringify(app))
        const appClaims = yield* emulator.verifyToken(app.token!)
        assert.strictEqual(appClaims.appid, emulator.clientId)
        assert.strictEqual(appClaims.aud, "https://vault.azure.net")

        assert.isTrue(managed.ok, JSON.stringify(managed))
        const miClaims = yield* emulator.verifyToken(managed.token!)
        assert.strictEqual(miClaims.appid, emulator.systemAssignedIdentity!.clientId)

        // @azure/identity wraps Entra errors from MSAL as AuthenticationRequiredError (protocol notes §1.5)
        assert.isFalse(wrong.ok)
        assert.include(wrong.message, "AADSTS7000215")

        const routes = (yield* emulator.requests).map((r) => `${r.route} ${r.status}`)
        assert.include(routes, "openid 200")
        assert.include(routes, "token 200")
        assert.include(routes, "token 401")
        assert.include(routes, "appService2019 200")
      }).pipe(Effect.scoped, withEnv({})),
    120_000
  )
})

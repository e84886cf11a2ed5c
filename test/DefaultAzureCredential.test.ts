import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { DefaultAzureCredential, TokenCredential } from "../src/index.js"
import type { IdentityError } from "../src/index.js"
import { setNow, T0, withEnv } from "./support/helpers.js"
import type { RecordedCommand, Reply } from "./support/mockCommand.js"
import { hang, mockExecutor, notFound, output } from "./support/mockCommand.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, mockHttp, tokenBody } from "./support/mockHttp.js"

const SCOPE = "https://vault.azure.net/.default"
const SECRET = "dac-secret-value"
const IMDS = "http://127.0.0.1:9"
const AUTHORITY = "https://login.example.test"

const cliJson = (token: string) =>
  JSON.stringify({ accessToken: token, expires_on: Math.floor(T0 / 1000) + 3600, tokenType: "Bearer" })
const azdJson = (token: string) => JSON.stringify({ token, expiresOn: "2026-11-27T09:00:00Z" })

const allLinks = [
  "EnvironmentCredential",
  "WorkloadIdentityCredential",
  "ManagedIdentityCredential",
  "SharedTokenCacheCredential",
  "AzureCliCredential",
  "AzurePowerShellCredential",
  "AzureDeveloperCliCredential"
]

/** IMDS never answers (the probe times out under TestClock); anything else is answered by `other`. */
const imdsHangs = (other: (r: Recorded) => Answer = () => json(404, {})) => (r: Recorded) =>
  r.url.origin === IMDS ? Effect.never : other(r)

const harness = (options: {
  readonly http?: (r: Recorded, i: number) => Answer | Effect.Effect<Answer>
  readonly commands?: (c: RecordedCommand, i: number) => Reply
  readonly env?: Record<string, string>
  readonly dac?: DefaultAzureCredential.Options
}) => {
  const http = mockHttp(options.http ?? imdsHangs())
  const exec = mockExecutor(options.commands ?? (() => notFound))
  const layer = DefaultAzureCredential.layer({
    ...options.dac,
    managedIdentity: { imdsEndpoint: IMDS, ...options.dac?.managedIdentity }
  }).pipe(Layer.provide(Layer.mergeAll(http.layer, exec.layer, FileSystem.layerNoop({}))))
  const run = <A, E>(f: (credential: TokenCredential.Service) => Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      yield* setNow
      return yield* f(yield* TokenCredential.TokenCredential)
    }).pipe(Effect.provide(layer), withEnv({ HOME: "/home/dev", ...options.env }))
  return { http, exec, run }
}

const failureOf = (exit: Exit.Exit<unknown, IdentityError.IdentityError>): IdentityError.IdentityError => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = Option.getOrThrowWith(Cause.failureOption(exit.cause), () => new Error(Cause.pretty(exit.cause)))
  for (const form of [error.message, String(error), JSON.stringify(error)]) assert.notInclude(form, SECRET)
  return error
}

const chainError = (exit: Exit.Exit<unknown, IdentityError.IdentityError>) => {
  const error = failureOf(exit)
  if (error._tag !== "ChainedAuthenticationError") throw new Error(`expected a chain error, got ${error.message}`)
  return error
}

describe("DefaultAzureCredential", () => {
  it.effect("nothing configured: every link reported, in order, once the 1 s IMDS probe times out", () => {
    const h = harness({})
    return h.run((credential) =>
      Effect.gen(function*() {
        assert.strictEqual(credential.name, "DefaultAzureCredential")
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* TestClock.adjust("999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "waits for the probe")
        yield* TestClock.adjust("1 millis")
        const error = chainError(yield* Fiber.join(fiber))
        assert.strictEqual(error.credential, "DefaultAzureCredential")
        assert.deepStrictEqual(error.errors.map((e) => e.credential), allLinks)
        assert.isTrue(error.errors.every((e) => e._tag === "CredentialUnavailableError"))
        const lines = error.message.split("\n")
        assert.strictEqual(
          lines[0],
          "DefaultAzureCredential found no credential that could get a token. Configure one of:"
        )
        allLinks.forEach((link, i) =>
          assert.match(lines[i + 1]!, new RegExp(`^  ${i + 1}\\. ${link} \\[unavailable\\]: `))
        )
        assert.include(lines[1], "AZURE_TENANT_ID")
        assert.include(lines[3], "did not answer the probe within 1000 ms")
        assert.include(lines[5], "az login")
        assert.include(lines[6], "Connect-AzAccount")
        assert.include(lines[7], "azd auth login")
        // one probe request (no Metadata header), nothing else on the network
        assert.strictEqual(h.http.requests.length, 1)
        assert.isUndefined(h.http.requests[0]!.headers["metadata"])
        assert.deepStrictEqual(h.exec.commands.map((c) => c.executable), ["az", "pwsh", "azd"])
        // the negative probe is remembered: the next call reports every link without waiting at all
        const again = chainError(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.strictEqual(again.errors.length, 7)
        assert.strictEqual(h.http.requests.length, 1)
      })
    )
  })

  it.effect("secret via the environment: the first link answers, nothing else is tried", () => {
    const h = harness({
      http: (r) => json(200, tokenBody(r.form.scope === SCOPE ? "env-token" : "other")),
      env: {
        AZURE_TENANT_ID: "contoso.onmicrosoft.com",
        AZURE_CLIENT_ID: "app-1",
        AZURE_CLIENT_SECRET: SECRET,
        AZURE_AUTHORITY_HOST: AUTHORITY
      }
    })
    return h.run((credential) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(Redacted.value(token.token), "env-token")
        assert.strictEqual(h.http.requests.length, 1)
        assert.strictEqual(h.http.requests[0]!.url.href, `${AUTHORITY}/contoso.onmicrosoft.com/oauth2/v2.0/token`)
        assert.strictEqual(h.exec.commands.length, 0)
      })
    )
  })

  it.effect("a wrong client secret stops the chain: no probe, no managed identity, no CLI", () => {
    const h = harness({
      http: (r) =>
        r.url.origin === AUTHORITY
          ? json(401, {
            error: "invalid_client",
            error_description: "AADSTS7000215: Invalid client secret provided.",
            error_codes: [7000215]
          })
          : json(500, {}),
      commands: () => output(cliJson("cli-token")),
      env: {
        AZURE_TENANT_ID: "contoso.onmicrosoft.com",
        AZURE_CLIENT_ID: "app-1",
        AZURE_CLIENT_SECRET: SECRET,
        AZURE_AUTHORITY_HOST: AUTHORITY
      }
    })
    return h.run((credential) =>
      Effect.gen(function*() {
        const error = chainError(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.deepStrictEqual(error.errors.map((e) => [e.credential, e._tag]), [
          ["EnvironmentCredential", "ClientAuthenticationError"]
        ])
        assert.include(error.message, "DefaultAzureCredential stopped at EnvironmentCredential")
        assert.include(error.message, "AADSTS7000215")
        assert.strictEqual(h.http.requests.length, 1)
        assert.strictEqual(h.exec.commands.length, 0)
      })
    )
  })

  it.effect("remembers the winner, and walks the chain again when it becomes unavailable", () => {
    let azSignedIn = true
    const h = harness({
      commands: (c) =>
        c.executable === "az"
          ? azSignedIn
            ? output(cliJson(`az-token-${c.args[5]}`))
            : { _tag: "output", exitCode: 1, stderr: "ERROR: Please run 'az login' to setup account." }
          : output(azdJson("azd-token"))
    })
    return h.run((credential) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(credential.getToken(SCOPE))
        yield* TestClock.adjust("1 second") // the IMDS probe times out
        assert.strictEqual(Redacted.value((yield* Fiber.join(fiber)).token), "az-token-https://vault.azure.net")
        assert.strictEqual(h.http.requests.length, 1)
        // a new scope: only the remembered az is asked
        const second = yield* credential.getToken("https://storage.azure.com/.default")
        assert.strictEqual(Redacted.value(second.token), "az-token-https://storage.azure.com")
        assert.deepStrictEqual(h.exec.commands.map((c) => c.executable), ["az", "az"])
        // az signs out: az first, then the whole chain; azd answers and becomes the winner
        azSignedIn = false
        yield* TestClock.adjust("6 minutes") // the negative probe has expired: IMDS is probed again
        const fallback = yield* Effect.fork(credential.getToken("https://graph.microsoft.com/.default"))
        yield* TestClock.adjust("1 second")
        assert.strictEqual(Redacted.value((yield* Fiber.join(fallback)).token), "azd-token")
        assert.deepStrictEqual(h.exec.commands.map((c) => c.executable), ["az", "az", "az", "pwsh", "azd"])
        assert.strictEqual(h.http.requests.length, 2)
        // and azd is now asked first
        yield* credential.getToken("https://management.azure.com/.default")
        assert.deepStrictEqual(h.exec.commands.map((c) => c.executable), ["az", "az", "az", "pwsh", "azd", "azd"])
      })
    )
  })

  it.effect("AZURE_TOKEN_CREDENTIALS=dev / prod select the members", () =>
    Effect.gen(function*() {
      for (
        const [value, expected] of [
          ["dev", [
            "SharedTokenCacheCredential",
            "AzureCliCredential",
            "AzurePowerShellCredential",
            "AzureDeveloperCliCredential"
          ]],
          [" PROD ", ["EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"]]
        ] as const
      ) {
        const h = harness({ env: { AZURE_TOKEN_CREDENTIALS: value } })
        yield* h.run((credential) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
            yield* TestClock.adjust("1 second")
            assert.deepStrictEqual(chainError(yield* Fiber.join(fiber)).errors.map((e) => e.credential), [...expected])
          })
        )
      }
    }))

  it.effect("AZURE_TOKEN_CREDENTIALS naming managed identity: only it, without the probe", () => {
    const h = harness({
      http: () => json(200, { access_token: "mi-token", expires_in: "3600", token_type: "Bearer" }),
      env: { AZURE_TOKEN_CREDENTIALS: "managedidentitycredential", AZURE_CLIENT_ID: "mi-client" }
    })
    return h.run((credential) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(Redacted.value(token.token), "mi-token")
        assert.strictEqual(h.http.requests.length, 1)
        const r = h.http.requests[0]!
        assert.strictEqual(r.headers["metadata"], "true", "a token request, not a probe")
        assert.strictEqual(r.url.searchParams.get("client_id"), "mi-client")
        assert.strictEqual(r.url.searchParams.get("resource"), "https://vault.azure.net")
      })
    )
  })

  it.effect("an invalid AZURE_TOKEN_CREDENTIALS is a clear error from getToken (the layer still builds)", () => {
    const h = harness({ env: { AZURE_TOKEN_CREDENTIALS: "AzurePipelinesCredential" } })
    return h.run((credential) =>
      Effect.gen(function*() {
        const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(
          error.message,
          "DefaultAzureCredential is unavailable: AZURE_TOKEN_CREDENTIALS is set to \"AzurePipelinesCredential\""
        )
        assert.include(error.message, "\"prod\"")
        assert.include(error.message, "\"dev\"")
        assert.include(error.message, "AzureDeveloperCliCredential")
        assert.strictEqual(h.http.requests.length, 0)
        assert.strictEqual(h.exec.commands.length, 0)
      })
    )
  })

  it.effect("exclude removes members; excluding all of them is a clear error", () =>
    Effect.gen(function*() {
      const h = harness({ dac: { exclude: ["ManagedIdentityCredential", "SharedTokenCacheCredential"] } })
      yield* h.run((credential) =>
        Effect.gen(function*() {
          // no probe to wait for
          const error = chainError(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.deepStrictEqual(error.errors.map((e) => e.credential), [
            "EnvironmentCredential",
            "WorkloadIdentityCredential",
            "AzureCliCredential",
            "AzurePowerShellCredential",
            "AzureDeveloperCliCredential"
          ])
          assert.strictEqual(h.http.requests.length, 0)
        })
      )
      const none = harness({
        dac: { exclude: ["AzureCliCredential"] },
        env: { AZURE_TOKEN_CREDENTIALS: "AzureCliCredential" }
      })
      yield* none.run((credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "every credential of the chain was excluded")
        })
      )
    }))

  it.effect("managed identity: resource id or object id win over AZURE_CLIENT_ID; client id option; system-assigned", () =>
    Effect.gen(function*() {
      const answer = () => json(200, { access_token: "mi", expires_in: "3600", token_type: "Bearer" })
      const byResource = harness({
        http: answer,
        env: { AZURE_TOKEN_CREDENTIALS: "ManagedIdentityCredential", AZURE_CLIENT_ID: "env-client" },
        dac: { managedIdentityResourceId: "/subscriptions/s/resourceGroups/g/providers/x/userAssignedIdentities/id" }
      })
      yield* byResource.run((credential) => credential.getToken(SCOPE))
      const params = byResource.http.requests[0]!.url.searchParams
      assert.strictEqual(
        params.get("msi_res_id"),
        "/subscriptions/s/resourceGroups/g/providers/x/userAssignedIdentities/id"
      )
      assert.isNull(params.get("client_id"))
      const byOption = harness({
        http: answer,
        env: { AZURE_TOKEN_CREDENTIALS: "ManagedIdentityCredential", AZURE_CLIENT_ID: "env-client" },
        dac: { managedIdentityClientId: "option-client" }
      })
      yield* byOption.run((credential) => credential.getToken(SCOPE))
      assert.strictEqual(byOption.http.requests[0]!.url.searchParams.get("client_id"), "option-client")
      const byObject = harness({
        http: answer,
        env: { AZURE_TOKEN_CREDENTIALS: "ManagedIdentityCredential", AZURE_CLIENT_ID: "env-client" },
        dac: { managedIdentity: { objectId: "object-1" } }
      })
      yield* byObject.run((credential) => credential.getToken(SCOPE))
      assert.strictEqual(byObject.http.requests[0]!.url.searchParams.get("object_id"), "object-1")
      assert.isNull(byObject.http.requests[0]!.url.searchParams.get("client_id"))
      const byEnv = harness({
        http: answer,
        env: { AZURE_TOKEN_CREDENTIALS: "ManagedIdentityCredential", AZURE_CLIENT_ID: "env-client" }
      })
      yield* byEnv.run((credential) => credential.getToken(SCOPE))
      assert.strictEqual(byEnv.http.requests[0]!.url.searchParams.get("client_id"), "env-client")
      const systemAssigned = harness({ http: answer, env: { AZURE_TOKEN_CREDENTIALS: "ManagedIdentityCredential" } })
      yield* systemAssigned.run((credential) => credential.getToken(SCOPE))
      assert.deepStrictEqual(
        [...systemAssigned.http.requests[0]!.url.searchParams.keys()].sort(),
        ["api-version", "resource"]
      )
    }))

  it.effect("tenantId and processTimeout reach the developer tools", () => {
    const h = harness({
      commands: (c) => (c.executable === "az" ? output(cliJson("az")) : hang),
      env: { AZURE_TOKEN_CREDENTIALS: "dev" },
      dac: { tenantId: "contoso.onmicrosoft.com", processTimeout: "3 seconds", exclude: ["AzureCliCredential"] }
    })
    return h.run((credential) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
        yield* TestClock.adjust("3 seconds") // pwsh times out
        yield* TestClock.adjust("2999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        const error = chainError(yield* Fiber.join(fiber))
        assert.deepStrictEqual(error.errors.map((e) => e.credential), [
          "SharedTokenCacheCredential",
          "AzurePowerShellCredential",
          "AzureDeveloperCliCredential"
        ])
        assert.include(error.errors[1]!.reason, "within 3s")
        assert.include(error.errors[2]!.reason, "within 3s")
        assert.strictEqual(h.exec.commands[0]!.env.AZURE_IDENTITY_POWERSHELL_TENANT_ID, "contoso.onmicrosoft.com")
        assert.deepStrictEqual(h.exec.commands[1]!.args.slice(-2), ["--tenant-id", "contoso.onmicrosoft.com"])
      })
    )
  })

  it.effect("AZURE_TOKEN_CREDENTIALS=AzurePowerShellCredential: only pwsh, with the azurePowerShell options", () => {
    const h = harness({
      commands: () => output(JSON.stringify({ Token: "pwsh-token", ExpiresOn: Math.floor(T0 / 1000) + 3600 })),
      env: { AZURE_TOKEN_CREDENTIALS: " azurepowershellcredential " },
      dac: { azurePowerShell: { executable: "/opt/pwsh/pwsh" } }
    })
    return h.run((credential) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(Redacted.value(token.token), "pwsh-token")
        assert.deepStrictEqual(h.exec.commands.map((c) => c.executable), ["/opt/pwsh/pwsh"])
        assert.strictEqual(h.http.requests.length, 0)
      })
    )
  })

  it.effect("Azure PowerShell answers after the Azure CLI is not signed in", () => {
    const h = harness({
      commands: (c) =>
        c.executable === "az"
          ? { _tag: "output", exitCode: 1, stderr: "ERROR: Please run 'az login' to setup account." }
          : c.executable === "pwsh"
          ? output(JSON.stringify({ Token: "pwsh-token", ExpiresOn: Math.floor(T0 / 1000) + 3600 }))
          : output(azdJson("azd-token")),
      env: { AZURE_TOKEN_CREDENTIALS: "dev" }
    })
    return h.run((credential) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(Redacted.value(token.token), "pwsh-token")
        assert.deepStrictEqual(h.exec.commands.map((c) => c.executable), ["az", "pwsh"])
      })
    )
  })

  it("selectMembers", () => {
    assert.deepStrictEqual(DefaultAzureCredential.selectMembers(undefined), {
      _tag: "Members",
      members: DefaultAzureCredential.members,
      explicit: false
    })
    assert.deepStrictEqual(DefaultAzureCredential.selectMembers("  "), {
      _tag: "Members",
      members: DefaultAzureCredential.members,
      explicit: false
    })
    assert.deepStrictEqual(DefaultAzureCredential.selectMembers("AzureCliCredential"), {
      _tag: "Members",
      members: ["AzureCliCredential"],
      explicit: true
    })
    assert.strictEqual(DefaultAzureCredential.selectMembers("cli")._tag, "Invalid")
  })
})

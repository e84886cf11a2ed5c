/**
 * The emulator's Azure Pipelines OIDC endpoint, driven by the library's AzurePipelinesCredential over real loopback
 * HTTP: the `azure-pipelines` scenario's variables are all a pipeline job needs; a wrong system access token and an
 * unknown service connection get Azure DevOps' answers, which the credential turns into errors that say what to fix.
 */
import { assert, describe, it } from "@effect/vitest"
import { AzurePipelinesCredential, TokenCredential } from "effect-azure-identity"
import * as IdentityNode from "effect-azure-identity/node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { withEnv } from "../../../../test/support/helpers.js"
import * as IdentityEmulator from "../../src/IdentityEmulator.js"

const SCOPE = "https://vault.azure.net/.default"

const run = (emulator: IdentityEmulator.Service, overrides: Record<string, string> = {}) =>
  TokenCredential.getToken(SCOPE).pipe(
    Effect.provide(AzurePipelinesCredential.layerConfig().pipe(Layer.provide(IdentityNode.layer))),
    Effect.withConfigProvider(emulator.configProviderFor("azure-pipelines")),
    Effect.either,
    withEnv(overrides)
  )

describe("IdentityEmulator: Azure Pipelines OIDC endpoint", () => {
  it.effect("AzurePipelinesCredential gets a token through the service connection's ID token", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make()
      const env = emulator.envFor("azure-pipelines")
      assert.strictEqual(env.SYSTEM_OIDCREQUESTURI, emulator.endpoints.pipelinesOidc)
      const result = yield* run(emulator)
      assert.strictEqual(result._tag, "Right")
      if (result._tag !== "Right") return
      const claims = yield* emulator.verifyToken(Redacted.value(result.right.token))
      assert.strictEqual(claims.appid, emulator.clientId)
      const routes = (yield* emulator.requests).map((r) => `${r.route} ${r.status}`)
      assert.deepStrictEqual(routes, ["pipelines 200", "token 200"])
    }).pipe(Effect.scoped, withEnv({})))

  it.effect("a wrong system access token is a 401 the credential explains; an unknown connection a 404", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make()
      const env = emulator.envFor("azure-pipelines")
      const wrongToken = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.provide(
          AzurePipelinesCredential.layer({
            tenantId: env.AZURESUBSCRIPTION_TENANT_ID!,
            clientId: env.AZURESUBSCRIPTION_CLIENT_ID!,
            serviceConnectionId: env.AZURESUBSCRIPTION_SERVICE_CONNECTION_ID!,
            systemAccessToken: Redacted.make("not-the-token"),
            oidcRequestUri: env.SYSTEM_OIDCREQUESTURI!,
            authorityHost: emulator.url
          }).pipe(Layer.provide(IdentityNode.layer))
        ),
        Effect.flip
      )
      assert.strictEqual(wrongToken._tag, "ClientAuthenticationError")
      assert.include(wrongToken.message, "SYSTEM_ACCESSTOKEN")
      assert.notInclude(wrongToken.message, "not-the-token")
      const unknown = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.provide(
          AzurePipelinesCredential.layer({
            tenantId: env.AZURESUBSCRIPTION_TENANT_ID!,
            clientId: env.AZURESUBSCRIPTION_CLIENT_ID!,
            serviceConnectionId: "00000000-0000-0000-0000-00000000dead",
            systemAccessToken: Redacted.make(env.SYSTEM_ACCESSTOKEN!),
            oidcRequestUri: env.SYSTEM_OIDCREQUESTURI!,
            authorityHost: emulator.url
          }).pipe(Layer.provide(IdentityNode.layer))
        ),
        Effect.flip
      )
      assert.strictEqual(unknown._tag, "ClientAuthenticationError")
      const routes = (yield* emulator.requests).map((r) => `${r.route} ${r.status}`)
      assert.deepStrictEqual(routes, ["pipelines 401", "pipelines 404"])
    }).pipe(Effect.scoped, withEnv({})))
})

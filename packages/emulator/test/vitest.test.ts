import { assert, it } from "@effect/vitest"
import { ClientSecretCredential, TokenCredential } from "effect-azure-identity"
import * as IdentityNode from "effect-azure-identity/node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as IdentityEmulator from "../src/IdentityEmulator.js"
import * as EmulatorFixture from "../src/vitest.js"

const SCOPE = "https://vault.azure.net/.default"
const Credential = ClientSecretCredential.layerConfig().pipe(Layer.provide(IdentityNode.layer))

it.layer(EmulatorFixture.layer(Credential, { scenario: "environment" }))("EmulatorFixture.layer", (it) => {
  it.effect("the credential reads the emulator's variables and gets a token the emulator signed", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.IdentityEmulator
      const token = yield* TokenCredential.getToken(SCOPE)
      const claims = yield* emulator.verifyToken(Redacted.value(token.token))
      assert.strictEqual(claims.aud, "https://vault.azure.net")
      assert.strictEqual(claims.appid ?? claims.azp, emulator.clientId)
    }))

  it.effect("the tests of the block share one credential (one cache) and one emulator", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.IdentityEmulator
      yield* TokenCredential.getToken(SCOPE)
      const tokenRequests = (yield* emulator.requests).filter((r) => r.route === "token")
      assert.strictEqual(tokenRequests.length, 1, "the first test's token is served from the shared cache")
    }))
})

EmulatorFixture.describe("EmulatorFixture.describe", Credential, { scenario: "environment" }, (it) => {
  it.effect("works the same in one call", () =>
    Effect.gen(function*() {
      const token = yield* TokenCredential.getToken(SCOPE)
      assert.strictEqual(Redacted.value(token.token).split(".").length, 3)
    }))
})

/**
 * The emulator's pure helpers, and its time: every `iat`/`nbf`/`exp` and every expiry check comes from `Clock`, so a
 * test clock drives it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { setNow, T0 } from "../../../test/support/helpers.js"
import * as IdentityEmulator from "../src/IdentityEmulator.js"
import { appService2017Date, entraTimestamp } from "../src/internal/emulator/responses.js"
import { audienceOf, graphAppId, resourceScopes } from "../src/internal/emulator/tokens.js"

describe("IdentityEmulator helpers", () => {
  it("audienceOf turns a scope into the token's audience", () => {
    assert.strictEqual(audienceOf("https://vault.azure.net/.default"), "https://vault.azure.net")
    assert.strictEqual(audienceOf("https://management.azure.com//.default"), "https://management.azure.com/")
    assert.strictEqual(audienceOf("https://graph.microsoft.com/User.Read"), "https://graph.microsoft.com")
    assert.strictEqual(audienceOf("api://my-api/access"), "api://my-api")
    assert.strictEqual(audienceOf("https://example.com"), "https://example.com")
    assert.strictEqual(audienceOf("User.Read"), graphAppId)
    assert.deepStrictEqual(resourceScopes(["openid", "Profile", "offline_access", "User.Read"]), ["User.Read"])
  })

  it("formats dates as Entra and App Service 2017 do", () => {
    assert.strictEqual(entraTimestamp(T0), "2026-11-27 08:00:00Z")
    assert.strictEqual(appService2017Date(T0 + 5_000), "11/27/2026 08:00:05 +00:00")
  })
})

describe("IdentityEmulator time", () => {
  it.effect("issues tokens and judges their validity by the Clock it runs under", () =>
    Effect.gen(function*() {
      yield* setNow
      const emulator = yield* IdentityEmulator.make({ tokenLifetime: "1 hour" })
      const answer = yield* Effect.promise(() =>
        fetch(emulator.endpoints.token, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({
            grant_type: "client_credentials",
            client_id: emulator.clientId,
            client_secret: emulator.env.AZURE_CLIENT_SECRET!,
            scope: "https://vault.azure.net/.default"
          })
        }).then((r) => r.json())
      )
      const claims = yield* emulator.verifyToken(answer.access_token)
      assert.strictEqual(claims.iat, T0 / 1000)
      assert.strictEqual(claims.exp, T0 / 1000 + 3600)
      assert.strictEqual(answer.expires_in, 3600)
      // two hours later (beyond the 5-minute skew) the same token no longer verifies
      yield* TestClock.adjust("2 hours")
      const expired = yield* Effect.either(emulator.verifyToken(answer.access_token))
      assert.strictEqual(expired._tag, "Left")
      if (expired._tag === "Left") assert.include(expired.left.message, "expired")
    }).pipe(Effect.scoped))
})

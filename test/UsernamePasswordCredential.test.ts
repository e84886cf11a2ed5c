import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import type { TokenCredential } from "../src/index.js"
import { UsernamePasswordCredential } from "../src/index.js"
import { assertNoSecret, captureLogs, failureOf, tokenValue, withCredentialOver } from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, text, tokenBody } from "./support/mockHttp.js"

const PASSWORD = "P@ssw0rd!-very-secret"
const RT = "ropc-refresh-token-value"
const TENANT = "contoso.onmicrosoft.com"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const USER = "alice@contoso.onmicrosoft.com"
const SCOPE = "https://graph.microsoft.com/User.Read"
const AUTHORITY = "https://login.example.test"

const options = (extra: Partial<UsernamePasswordCredential.Options> = {}): UsernamePasswordCredential.Options => ({
  tenantId: TENANT,
  clientId: CLIENT,
  username: USER,
  password: Redacted.make(PASSWORD),
  authorityHost: AUTHORITY,
  ...extra
})

const entra = (state: { revoked: boolean }) => (r: Recorded, i: number): Answer => {
  if (r.form.grant_type === "password") {
    return r.form.password === PASSWORD
      ? json(200, tokenBody(`pw-at-${i}`, 3600, { refresh_token: RT }))
      : json(400, {
        error: "invalid_grant",
        error_description: "AADSTS50126: Error validating credentials due to invalid username or password.",
        error_codes: [50126]
      })
  }
  if (state.revoked) return json(400, { error: "invalid_grant", error_codes: [700084] })
  return json(200, tokenBody(`rt-at-${i}`))
}

const run = <A, E>(
  handler: (request: Recorded, index: number) => Answer,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  layer: Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient>,
  env: Record<string, string> = {}
) => withCredentialOver(layer, handler, f, { env })

const withCredential = <A, E>(
  handler: (request: Recorded, index: number) => Answer,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  extra: Partial<UsernamePasswordCredential.Options> = {}
) => run(handler, f, UsernamePasswordCredential.layer(options(extra)))

describe("UsernamePasswordCredential", () => {
  it.effect("sends the password grant with offline_access and client_info", () =>
    withCredential(entra({ revoked: false }), (credential, requests) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(tokenValue(token), "pw-at-0")
        assert.deepStrictEqual(requests[0]!.form, {
          client_id: CLIENT,
          client_info: "1",
          grant_type: "password",
          username: USER,
          password: PASSWORD,
          scope: `${SCOPE} openid profile offline_access`
        })
        yield* credential.getToken(SCOPE)
        assert.strictEqual(requests.length, 1)
      })))

  it.effect("other scopes come from the refresh token; a revoked one falls back to the password", () => {
    const state = { revoked: false }
    return withCredential(entra(state), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        const vault = yield* credential.getToken("https://vault.azure.net/user_impersonation")
        assert.strictEqual(tokenValue(vault), "rt-at-1")
        assert.strictEqual(requests[1]!.form.refresh_token, RT)
        assert.isUndefined(requests[1]!.form.password)
        state.revoked = true
        yield* TestClock.adjust("2 hours")
        const again = yield* credential.getToken(SCOPE)
        assert.strictEqual(tokenValue(again), "pw-at-3")
        assert.deepStrictEqual(requests.map((r) => r.form.grant_type), [
          "password",
          "refresh_token",
          "refresh_token",
          "password"
        ])
      }), { clientSecret: Redacted.make("conf-secret") })
  })

  it.effect("sends client_secret when configured", () =>
    withCredential(entra({ revoked: false }), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        assert.strictEqual(requests[0]!.form.client_secret, "conf-secret")
      }), { clientSecret: Redacted.make("conf-secret") }))

  it.effect("logs the deprecation warning once per layer, and never the password", () => {
    const logs = captureLogs()
    return withCredential(entra({ revoked: false }), (credential) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        yield* credential.getToken("https://vault.azure.net/user_impersonation")
        yield* Effect.exit(credential.getToken(SCOPE, { tenantId: "other" }))
        const warnings = logs.lines.filter((l) => l.includes("resource owner password grant"))
        assert.strictEqual(warnings.length, 1)
        assert.include(warnings[0]!, "WARN")
        assert.include(warnings[0]!, "UsernamePasswordCredential")
        for (const line of logs.lines) {
          assert.notInclude(line, PASSWORD)
          assert.notInclude(line, RT)
        }
      })).pipe(Effect.provide(logs.layer))
  })

  describe("typed errors without the password", () => {
    const cases: ReadonlyArray<[string, () => Answer, string]> = [
      [
        "a wrong password",
        () =>
          json(400, {
            error: "invalid_grant",
            error_description: `AADSTS50126: Error validating credentials due to invalid username or password.`,
            error_codes: [50126]
          }),
        "AADSTS50126"
      ],
      [
        "MFA required",
        () => json(400, { error: "invalid_grant", error_description: "AADSTS50076: MFA", error_codes: [50076] }),
        "Multi-factor"
      ],
      ["an HTML page", () => text(200, "<html><title>ADFS</title></html>"), "ADFS"],
      ["malformed JSON", () => text(200, `{"password":"${PASSWORD}`, "application/json"), "not JSON"]
    ]
    for (const [title, answer, hint] of cases) {
      it.effect(title, () =>
        withCredential(answer, (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, hint)
            assertNoSecret(error, PASSWORD)
          })))
    }
  })

  describe("configuration", () => {
    it.effect("layerConfig reads AZURE_USERNAME and AZURE_PASSWORD", () =>
      run(
        entra({ revoked: false }),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            assert.strictEqual(requests[0]!.form.username, USER)
            assert.strictEqual(requests[0]!.form.password, PASSWORD)
            assert.strictEqual(requests[0]!.url.href, `http://127.0.0.1:1/${TENANT}/oauth2/v2.0/token`)
          }),
        UsernamePasswordCredential.layerConfig(),
        {
          AZURE_TENANT_ID: TENANT,
          AZURE_CLIENT_ID: CLIENT,
          AZURE_USERNAME: USER,
          AZURE_PASSWORD: PASSWORD,
          AZURE_AUTHORITY_HOST: "http://127.0.0.1:1"
        }
      ))

    it.effect("missing configuration is unavailable, naming the variables", () =>
      run(
        entra({ revoked: false }),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "AZURE_PASSWORD")
            assert.strictEqual(requests.length, 0)
          }),
        UsernamePasswordCredential.layerConfig(),
        {
          AZURE_TENANT_ID: TENANT,
          AZURE_CLIENT_ID: CLIENT,
          AZURE_USERNAME: USER
        }
      ))

    for (
      const [title, extra, hint] of [
        ["an empty password", { password: Redacted.make("") }, "password is empty"],
        ["an empty username", { username: " " }, "no username"]
      ] as const
    ) {
      it.effect(
        title,
        () =>
          withCredential(entra({ revoked: false }), (credential, requests) =>
            Effect.gen(function*() {
              const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
              assert.strictEqual(error._tag, "CredentialUnavailableError")
              assert.include(error.message, hint)
              assert.strictEqual(requests.length, 0)
            }), extra)
      )
    }
  })
})

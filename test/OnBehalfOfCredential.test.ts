import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { decodeJwt, decodeProtectedHeader } from "jose"
import type { AccessToken, TokenCredential } from "../src/index.js"
import { OnBehalfOfCredential, TokenCache } from "../src/index.js"
import { assertNoSecret, captureLogs, failureOf, T0, tokenValue, withCredentialOver } from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, text, tokenBody } from "./support/mockHttp.js"
import { makeSelfSigned } from "./support/tls.js"

const ALICE = "eyJhbGciOi.alice-user-assertion.sig"
const BOB = "eyJhbGciOi.bob-user-assertion.sig"
const SECRET = "middle-tier-secret~value"
const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const SCOPE = "https://graph.microsoft.com/.default"
const AUTHORITY = "https://login.example.test"

const base = (extra: Partial<OnBehalfOfCredential.Options> = {}): OnBehalfOfCredential.Options => ({
  tenantId: TENANT,
  clientId: CLIENT,
  authorityHost: AUTHORITY,
  ...extra
})

const byUser = (r: Recorded): Answer => json(200, tokenBody(`obo-for-${r.form.assertion!.split(".")[1]}`))

const withCredential = <A, E>(
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  options: OnBehalfOfCredential.Options,
  extraLayer: Layer.Layer<never> = Layer.empty
) =>
  withCredentialOver(OnBehalfOfCredential.layer(options), handler, f, {
    deps: (http) => Layer.merge(http.layer, extraLayer)
  })

const asUser = (assertion: string) => OnBehalfOfCredential.withUserAssertion(Redacted.make(assertion))

describe("OnBehalfOfCredential", () => {
  it.effect("exchanges the user assertion with the client secret", () =>
    withCredential(byUser, (credential, requests) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(tokenValue(token), "obo-for-alice-user-assertion")
        assert.strictEqual(requests[0]!.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
        assert.deepStrictEqual(requests[0]!.form, {
          client_id: CLIENT,
          grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
          assertion: ALICE,
          requested_token_use: "on_behalf_of",
          client_secret: SECRET,
          scope: SCOPE
        })
        yield* credential.getToken(SCOPE)
        assert.strictEqual(requests.length, 1)
      }), base({ userAssertionToken: Redacted.make(ALICE), clientSecret: Redacted.make(SECRET) })))

  it.effect("caches per user assertion and scopes; withUserAssertion wins over the option", () =>
    withCredential(byUser, (credential, requests) =>
      Effect.gen(function*() {
        const alice = yield* credential.getToken(SCOPE)
        const bob = yield* asUser(BOB)(credential.getToken(SCOPE))
        const aliceAgain = yield* asUser(ALICE)(credential.getToken(SCOPE))
        const bobAgain = yield* asUser(BOB)(credential.getToken(SCOPE))
        assert.strictEqual(tokenValue(alice), "obo-for-alice-user-assertion")
        assert.strictEqual(tokenValue(bob), "obo-for-bob-user-assertion")
        assert.strictEqual(tokenValue(aliceAgain), tokenValue(alice))
        assert.strictEqual(tokenValue(bobAgain), tokenValue(bob))
        assert.strictEqual(requests.length, 2)
        yield* asUser(BOB)(credential.getToken("https://vault.azure.net/.default"))
        assert.strictEqual(requests.length, 3)
        yield* TestClock.adjust("2 hours")
        yield* asUser(BOB)(credential.getToken(SCOPE))
        assert.strictEqual(requests.length, 4)
        assert.strictEqual(requests[3]!.form.assertion, BOB)
      }), base({ userAssertionToken: Redacted.make(ALICE), clientSecret: Redacted.make(SECRET) })))

  it.effect("persisted cache keys hold a hash of the assertion, never the assertion", () => {
    const saved = new Map<string, AccessToken.AccessToken>()
    const persistence = Layer.succeed(TokenCache.TokenCache, {
      load: (key) => Effect.succeed(Option.fromNullable(saved.get(key))),
      save: (key, token) => Effect.sync(() => void saved.set(key, token))
    })
    return withCredential(
      byUser,
      (credential) =>
        Effect.gen(function*() {
          yield* asUser(ALICE)(credential.getToken(SCOPE))
          yield* asUser(BOB)(credential.getToken(SCOPE))
          const keys = [...saved.keys()]
          assert.strictEqual(keys.length, 2)
          assert.notStrictEqual(keys[0], keys[1])
          for (const key of keys) {
            assert.notInclude(key, "alice")
            assert.notInclude(key, "bob")
            assert.include(key, "obo:")
          }
        }),
      base({ clientSecret: Redacted.make(SECRET) }),
      persistence
    )
  })

  it.effect("signs a fresh client assertion with a certificate instead of a secret", () =>
    Effect.gen(function*() {
      const cert = yield* Effect.promise(() => makeSelfSigned({ commonName: "obo-app" }))
      return yield* withCredential(byUser, (credential, requests) =>
        Effect.gen(function*() {
          yield* asUser(ALICE)(credential.getToken(SCOPE))
          const form = requests[0]!.form
          assert.isUndefined(form.client_secret)
          assert.strictEqual(form.client_assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
          assert.strictEqual(form.assertion, ALICE)
          assert.strictEqual(form.requested_token_use, "on_behalf_of")
          const claims = decodeJwt(form.client_assertion!)
          assert.strictEqual(claims.aud, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
          assert.strictEqual(claims.iss, CLIENT)
          assert.strictEqual(claims.sub, CLIENT)
          assert.strictEqual(claims.nbf, Math.floor(T0 / 1000))
          assert.strictEqual(decodeProtectedHeader(form.client_assertion!).alg, "PS256")
        }), base({ certificate: Redacted.make(cert.certPem + cert.keyPem) }))
    }))

  describe("unavailable without sending anything", () => {
    const cases: ReadonlyArray<[string, OnBehalfOfCredential.Options, string]> = [
      ["no user assertion", base({ clientSecret: Redacted.make(SECRET) }), "withUserAssertion"],
      [
        "an empty user assertion",
        base({ clientSecret: Redacted.make(SECRET), userAssertionToken: Redacted.make(" ") }),
        "userAssertionToken"
      ],
      ["neither secret nor certificate", base({ userAssertionToken: Redacted.make(ALICE) }), "certificatePath"],
      [
        "both secret and certificate",
        base({
          userAssertionToken: Redacted.make(ALICE),
          clientSecret: Redacted.make(SECRET),
          certificatePath: "/x.pem"
        }),
        "only one"
      ],
      [
        "a certificate path without a FileSystem",
        base({ userAssertionToken: Redacted.make(ALICE), certificatePath: "/etc/app.pem" }),
        "FileSystem"
      ],
      [
        "an invalid certificate",
        base({ userAssertionToken: Redacted.make(ALICE), certificate: "-----BEGIN CERTIFICATE-----\nxx" }),
        "certificate"
      ],
      ["no tenant", base({ tenantId: "", clientSecret: Redacted.make(SECRET) }), "tenant"]
    ]
    for (const [title, options, hint] of cases) {
      it.effect(title, () =>
        withCredential(byUser, (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, hint)
            assert.include(error.message, "OnBehalfOfCredential")
            assert.strictEqual(requests.length, 0)
            assertNoSecret(error, ALICE, SECRET)
          }), options))
    }

    it.effect("an invalid scope", () =>
      withCredential(byUser, (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(asUser(ALICE)(credential.getToken(["a b"]))))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.strictEqual(requests.length, 0)
        }), base({ clientSecret: Redacted.make(SECRET) })))
  })

  describe("rejections are typed errors without the assertion, secret or token", () => {
    const cases: ReadonlyArray<[string, () => Answer, string]> = [
      [
        "an invalid user assertion",
        () =>
          json(400, {
            error: "invalid_grant",
            error_description: "AADSTS50013: Assertion failed signature validation.",
            error_codes: [50013]
          }),
        "AADSTS50013"
      ],
      [
        "consent required",
        () => json(400, { error: "invalid_grant", error_description: "AADSTS65001: consent", error_codes: [65001] }),
        "consented"
      ],
      ["an HTML page", () => text(200, "<html><title>Portal</title></html>"), "Portal"],
      ["malformed JSON", () => text(200, `{"access_token":"${ALICE}`, "application/json"), "not JSON"]
    ]
    for (const [title, answer, hint] of cases) {
      it.effect(title, () =>
        withCredential(answer, (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(asUser(ALICE)(credential.getToken(SCOPE))))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, hint)
            assertNoSecret(error, ALICE, SECRET)
          }), base({ clientSecret: Redacted.make(SECRET) })))
    }
  })

  it.effect("logs never hold the assertion or the token", () => {
    const logs = captureLogs()
    return withCredential(
      (r, i) => i === 0 ? byUser(r) : json(400, { error: "invalid_grant", error_codes: [50013] }),
      (credential) =>
        Effect.gen(function*() {
          const token = yield* asUser(ALICE)(credential.getToken(SCOPE))
          yield* TestClock.adjust("56 minutes")
          yield* asUser(ALICE)(credential.getToken(SCOPE)) // background refresh fails, is logged
          yield* Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow(), { discard: true })
          yield* Effect.logInfo("token", token)
          assert.isTrue(logs.lines.some((l) => l.includes("background token refresh failed")))
          for (const line of logs.lines) {
            for (const secret of [ALICE, SECRET, "obo-for-alice"]) assert.notInclude(line, secret)
          }
        }),
      base({ clientSecret: Redacted.make(SECRET) })
    ).pipe(Effect.provide(logs.layer))
  })
})

/**
 * Regional authorities (ESTS-R) for the client credentials grant: the host rule, the setting (option and
 * AZURE_REGIONAL_AUTHORITY_NAME), automatic detection (REGION_NAME, IMDS at an overridden endpoint, its timeout),
 * applied to ClientSecret, Certificate and ClientAssertion credentials.
 */
import "reflect-metadata"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { decodeJwt } from "jose"
import { CertificateCredential, ClientAssertionCredential, ClientSecretCredential } from "../src/index.js"
import type { IdentityError, TokenCredential } from "../src/index.js"
import * as Regional from "../src/internal/regionalAuthority.js"
import { failureOf, withCredentialOver, withEnv } from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, mockHttp, reset, text, tokenBody } from "./support/mockHttp.js"
import { makeSelfSigned } from "./support/tls.js"

const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const SCOPE = "https://vault.azure.net/.default"
const IMDS = "http://imds.test:8080"
const LOCATION_URL = `${IMDS}/metadata/instance/compute/location?api-version=2021-02-01&format=text`

const app = await makeSelfSigned({ commonName: "app" })

const isImds = (request: Recorded) => request.url.pathname.startsWith("/metadata/")

/** IMDS answers `imds`; the token endpoint answers tokens. */
const handler = (imds: () => Answer | Effect.Effect<Answer>) => (request: Recorded): Answer | Effect.Effect<Answer> =>
  isImds(request) ? imds() : json(200, tokenBody(`tok-${request.url.host}`))

const secret = (over: Partial<ClientSecretCredential.Options> = {}) =>
  ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: CLIENT,
    clientSecret: Redacted.make("s3cret"),
    ...over
  })

const run = <A, E>(
  layer: Parameters<typeof withCredentialOver>[0],
  imds: () => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  env: Record<string, string> = {}
) => withCredentialOver(layer, handler(imds), f, { env })

const noImds = (): Answer => {
  throw new Error("IMDS must not be asked")
}

const tokenUrls = (requests: Array<Recorded>) => requests.filter((r) => !isImds(r)).map((r) => r.url.href)

describe("regional host rule", () => {
  it("public cloud aliases become {region}.login.microsoft.com; other hosts get the prefix; loopback unchanged", () => {
    for (const host of ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]) {
      assert.strictEqual(Regional.regionalHost(`https://${host}`, "westus"), "https://westus.login.microsoft.com")
    }
    assert.strictEqual(
      Regional.regionalHost("https://login.chinacloudapi.cn", "chinaeast2"),
      "https://chinaeast2.login.chinacloudapi.cn"
    )
    assert.strictEqual(
      Regional.regionalHost("https://login.microsoftonline.us", "usgovvirginia"),
      "https://usgovvirginia.login.microsoftonline.us"
    )
    assert.strictEqual(
      Regional.regionalHost("https://login.contoso.test:8443/base", "westus"),
      "https://westus.login.contoso.test:8443/base"
    )
    assert.strictEqual(Regional.regionalHost("http://127.0.0.1:4000", "westus"), "http://127.0.0.1:4000")
    assert.strictEqual(Regional.regionalHost("http://localhost:4000", "westus"), "http://localhost:4000")
  })

  it("settings: region names normalised and checked, tryAutoDetect and AutoDiscoverRegion, empty = global", () => {
    assert.deepStrictEqual(Regional.parseSetting(" West US "), Either.right({ _tag: "Region", region: "westus" }))
    assert.deepStrictEqual(Regional.parseSetting("TryAutoDetect"), Either.right({ _tag: "AutoDetect" }))
    assert.deepStrictEqual(Regional.parseSetting("AutoDiscoverRegion"), Either.right({ _tag: "AutoDetect" }))
    assert.deepStrictEqual(Regional.parseSetting(""), Either.right({ _tag: "Global" }))
    assert.deepStrictEqual(Regional.parseSetting(undefined), Either.right({ _tag: "Global" }))
    for (const bad of ["west.us", "1west", "westus-", "evil.com/x", "a".repeat(64), "west_us"]) {
      assert.isTrue(Either.isLeft(Regional.parseSetting(bad)), bad)
    }
  })
})

describe("regional token requests", () => {
  it.effect("ClientSecretCredential with regionalAuthority: the regional endpoint of the public cloud", () =>
    run(secret({ regionalAuthority: "westus" }), noImds, (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        assert.deepStrictEqual(tokenUrls(requests), [`https://westus.login.microsoft.com/${TENANT}/oauth2/v2.0/token`])
      })))

  it.effect("AZURE_REGIONAL_AUTHORITY_NAME with the China cloud; the option wins over the variable", () =>
    Effect.gen(function*() {
      yield* run(
        secret({ authorityHost: "https://login.chinacloudapi.cn" }),
        noImds,
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            assert.deepStrictEqual(tokenUrls(requests), [
              `https://chinaeast2.login.chinacloudapi.cn/${TENANT}/oauth2/v2.0/token`
            ])
          }),
        { AZURE_REGIONAL_AUTHORITY_NAME: "chinaeast2" }
      )
      yield* run(secret({ regionalAuthority: "eastus" }), noImds, (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.deepStrictEqual(tokenUrls(requests), [
            `https://eastus.login.microsoft.com/${TENANT}/oauth2/v2.0/token`
          ])
        }), { AZURE_REGIONAL_AUTHORITY_NAME: "chinaeast2" })
    }))

  it.effect("MSAL_FORCE_REGION (msal-node's variable) when neither the option nor AZURE_REGIONAL_AUTHORITY_NAME is set", () =>
    Effect.gen(function*() {
      const expect = (
        layer: Parameters<typeof withCredentialOver>[0],
        env: Record<string, string>,
        url: string
      ) =>
        run(layer, noImds, (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            assert.deepStrictEqual(tokenUrls(requests), [url], JSON.stringify(env))
          }), env)
      const regional = (region: string) => `https://${region}.login.microsoft.com/${TENANT}/oauth2/v2.0/token`
      const global = `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`
      yield* expect(secret(), { MSAL_FORCE_REGION: "westus2" }, regional("westus2"))
      // the library's own settings come first, and `DisableMsalForceRegion` in either turns it off, as in MSAL
      yield* expect(
        secret(),
        { MSAL_FORCE_REGION: "westus2", AZURE_REGIONAL_AUTHORITY_NAME: "eastus" },
        regional("eastus")
      )
      yield* expect(
        secret({ regionalAuthority: "northeurope" }),
        { MSAL_FORCE_REGION: "westus2" },
        regional("northeurope")
      )
      yield* expect(
        secret(),
        { MSAL_FORCE_REGION: "westus2", AZURE_REGIONAL_AUTHORITY_NAME: "DisableMsalForceRegion" },
        global
      )
      yield* expect(secret({ regionalAuthority: "DisableMsalForceRegion" }), { MSAL_FORCE_REGION: "westus2" }, global)
      // an empty AZURE_REGIONAL_AUTHORITY_NAME is unset
      yield* expect(secret(), { MSAL_FORCE_REGION: "westus2", AZURE_REGIONAL_AUTHORITY_NAME: " " }, regional("westus2"))
      // an invalid value is named by its variable
      yield* run(secret(), noImds, (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE))) as IdentityError.IdentityError
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.match(error.message, /MSAL_FORCE_REGION: the regional authority "west\.us" is not a region name/)
          assert.strictEqual(tokenUrls(requests).length, 0)
        }), { MSAL_FORCE_REGION: "west.us" })
    }))

  it.effect("without a setting: the global endpoint", () =>
    run(secret(), noImds, (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        assert.deepStrictEqual(tokenUrls(requests), [`https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`])
      })))

  it.effect("an invalid region is CredentialUnavailableError naming the setting, before any request", () =>
    Effect.gen(function*() {
      yield* run(secret(), noImds, (credential, requests) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE))) as IdentityError.IdentityError
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "AZURE_REGIONAL_AUTHORITY_NAME")
          assert.include(error.message, "is not a region name")
          assert.strictEqual(requests.length, 0)
        }), { AZURE_REGIONAL_AUTHORITY_NAME: "evil.com/" })
      yield* run(secret({ regionalAuthority: "x y.z" }), noImds, (credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE))) as IdentityError.IdentityError
          assert.include(error.message, "regionalAuthority option")
        }))
    }))

  it.effect("tryAutoDetect asks the overridden IMDS once, with Metadata: true", () =>
    run(
      secret({ regionalAuthority: "tryAutoDetect", regionDetection: { imdsEndpoint: IMDS } }),
      () => text(200, "westeurope\n", "text/plain"),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          yield* credential.getToken("https://graph.microsoft.com/.default")
          const imds = requests.filter(isImds)
          assert.strictEqual(imds.length, 1)
          assert.strictEqual(imds[0]!.url.href, LOCATION_URL)
          assert.strictEqual(imds[0]!.method, "GET")
          assert.strictEqual(imds[0]!.headers.metadata, "true")
          assert.deepStrictEqual(tokenUrls(requests), [
            `https://westeurope.login.microsoft.com/${TENANT}/oauth2/v2.0/token`,
            `https://westeurope.login.microsoft.com/${TENANT}/oauth2/v2.0/token`
          ])
        })
    ))

  it.effect("AZURE_REGIONAL_AUTHORITY_NAME=AutoDiscoverRegion uses AZURE_POD_IDENTITY_AUTHORITY_HOST as IMDS", () =>
    run(secret(), () => text(200, "northeurope", "text/plain"), (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        assert.strictEqual(requests.filter(isImds)[0]!.url.origin, IMDS)
        assert.deepStrictEqual(tokenUrls(requests), [
          `https://northeurope.login.microsoft.com/${TENANT}/oauth2/v2.0/token`
        ])
      }), { AZURE_REGIONAL_AUTHORITY_NAME: "AutoDiscoverRegion", AZURE_POD_IDENTITY_AUTHORITY_HOST: IMDS }))

  it.effect("REGION_NAME is used before IMDS", () =>
    run(secret({ regionalAuthority: "tryAutoDetect" }), noImds, (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        assert.deepStrictEqual(tokenUrls(requests), [
          `https://southindia.login.microsoft.com/${TENANT}/oauth2/v2.0/token`
        ])
      }), { REGION_NAME: "South India" }))

  it.effect("IMDS failing, answering 404, garbage, or nothing within the timeout: the global endpoint", () =>
    Effect.gen(function*() {
      const global = `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`
      const detect = { regionalAuthority: "tryAutoDetect", regionDetection: { imdsEndpoint: IMDS } }
      for (const answer of [() => reset, () => json(404, {}), () => text(200, "<html>", "text/html")]) {
        yield* run(secret(detect), answer, (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            assert.deepStrictEqual(tokenUrls(requests), [global])
          }))
      }
      yield* run(secret(detect), () => Effect.never, (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(credential.getToken(SCOPE))
          yield* TestClock.adjust("1999 millis")
          assert.deepStrictEqual(tokenUrls(requests), [])
          yield* TestClock.adjust("1 millis")
          yield* Fiber.join(fiber)
          assert.deepStrictEqual(tokenUrls(requests), [global])
        }))
    }))

  it.effect("the adfs tenant is never regional", () =>
    run(
      secret({ tenantId: "adfs", authorityHost: "https://adfs.contoso.test", regionalAuthority: "westus" }),
      noImds,
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.deepStrictEqual(tokenUrls(requests), ["https://adfs.contoso.test/adfs/oauth2/token"])
        })
    ))

  it.effect("CertificateCredential: the regional endpoint, and the assertion's aud is that endpoint", () =>
    run(
      CertificateCredential.layer({
        tenantId: TENANT,
        clientId: CLIENT,
        certificate: app.certPem + app.keyPem,
        regionalAuthority: "westus"
      }),
      noImds,
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          const url = `https://westus.login.microsoft.com/${TENANT}/oauth2/v2.0/token`
          assert.deepStrictEqual(tokenUrls(requests), [url])
          assert.strictEqual(decodeJwt(requests[0]!.form.client_assertion!).aud, url)
        })
    ))

  it.effect("ClientAssertionCredential: the regional endpoint from the variable", () =>
    run(
      ClientAssertionCredential.layer({ tenantId: TENANT, clientId: CLIENT, getAssertion: Effect.succeed("jwt") }),
      noImds,
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.deepStrictEqual(tokenUrls(requests), [
            `https://uksouth.login.microsoft.com/${TENANT}/oauth2/v2.0/token`
          ])
        }),
      { AZURE_REGIONAL_AUTHORITY_NAME: "uksouth" }
    ))

  it.effect("a detection interrupted half-way leaves nothing behind: the next request detects again, then never", () =>
    Effect.gen(function*() {
      let calls = 0
      const http = mockHttp(() => (++calls === 1 ? Effect.never : text(200, "eastus2", "text/plain")))
      const regional = yield* Regional.make(http.client, "https://login.microsoftonline.com", {
        regionalAuthority: "tryAutoDetect",
        regionDetection: { imdsEndpoint: IMDS }
      })
      assert.isTrue(Either.isRight(regional))
      if (Either.isLeft(regional)) return
      const first = yield* Effect.fork(regional.right.host(TENANT))
      yield* TestClock.adjust("500 millis")
      yield* Fiber.interrupt(first)
      assert.strictEqual(yield* regional.right.host(TENANT), "https://eastus2.login.microsoft.com")
      assert.strictEqual(yield* regional.right.host("adfs"), "https://login.microsoftonline.com")
      assert.strictEqual(yield* regional.right.host(TENANT), "https://eastus2.login.microsoft.com")
      assert.strictEqual(http.requests.length, 2)
    }).pipe(withEnv({})))
})

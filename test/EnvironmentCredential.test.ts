import * as PlatformError from "@effect/platform/Error"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { EnvironmentCredential, TokenCredential } from "../src/index.js"
import type { IdentityError } from "../src/index.js"
import { captureLogs, layerFileReads, setNow, withEnv } from "./support/helpers.js"
import type { Recorded } from "./support/mockHttp.js"
import { dieHttp, json, mockHttp, tokenBody } from "./support/mockHttp.js"
import type { Issued } from "./support/tls.js"
import { makeSelfSigned } from "./support/tls.js"

const TENANT = "contoso.onmicrosoft.com"
const CLIENT = "app-1"
const SECRET = "env-secret-~value"
const PASSWORD = "p@ssw0rd-value"
const CERT_PASSWORD = "cert-pass-value"
const SCOPE = "https://vault.azure.net/.default"
const AUTHORITY = "https://login.example.test"

let app: Issued
beforeAll(async () => {
  app = await makeSelfSigned({ commonName: "env-app" })
})

const memoryFs = (files: Record<string, string>) =>
  layerFileReads({
    readFileString: (path) =>
      files[path] === undefined
        ? Effect.fail(
          new PlatformError.SystemError({
            reason: "NotFound",
            module: "FileSystem",
            method: "readFileString",
            pathOrDescriptor: path
          })
        )
        : Effect.succeed(files[path]!)
  })

const run = <A, E>(
  env: Record<string, string>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  options: {
    readonly answer?: (r: Recorded) => Response
    readonly files?: Record<string, string>
    readonly http?: "die"
  } = {}
) => {
  const http = mockHttp((r) => (options.answer ?? (() => json(200, tokenBody("env-token"))))(r))
  return Effect.gen(function*() {
    yield* setNow
    const credential = yield* TokenCredential.TokenCredential
    return yield* f(credential, http.requests)
  }).pipe(
    Effect.provide(
      EnvironmentCredential.layer().pipe(
        Layer.provide(Layer.merge(options.http === "die" ? dieHttp : http.layer, memoryFs(options.files ?? {})))
      )
    ),
    withEnv({ AZURE_AUTHORITY_HOST: AUTHORITY, ...env })
  )
}

const failureOf = (exit: Exit.Exit<unknown, IdentityError.IdentityError>): IdentityError.IdentityError => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = Option.getOrThrowWith(Cause.failureOption(exit.cause), () => new Error(Cause.pretty(exit.cause)))
  for (const form of [error.message, String(error), JSON.stringify(error)]) {
    for (const secret of [SECRET, PASSWORD, CERT_PASSWORD]) assert.notInclude(form, secret)
  }
  return error
}

const unavailableReason = (exit: Exit.Exit<unknown, IdentityError.IdentityError>): string => {
  const error = failureOf(exit)
  assert.strictEqual(error._tag, "CredentialUnavailableError")
  assert.strictEqual((error as IdentityError.CredentialUnavailableError).credential, "EnvironmentCredential")
  return (error as IdentityError.CredentialUnavailableError).reason
}

const base = { AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT }

describe("EnvironmentCredential", () => {
  it.effect("tenant + client + secret → client secret grant (AZURE_AUTHORITY_HOST honoured)", () =>
    run({ ...base, AZURE_CLIENT_SECRET: SECRET }, (credential, requests) =>
      Effect.gen(function*() {
        assert.strictEqual(credential.name, "EnvironmentCredential")
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(Redacted.value(token.token), "env-token")
        assert.strictEqual(requests[0]!.url.href, `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`)
        assert.deepStrictEqual(requests[0]!.form, {
          client_id: CLIENT,
          grant_type: "client_credentials",
          client_secret: SECRET,
          scope: SCOPE
        })
      })))

  it.effect("AZURE_ADDITIONALLY_ALLOWED_TENANTS lets getToken ask for another tenant", () =>
    run(
      { ...base, AZURE_CLIENT_SECRET: SECRET, AZURE_ADDITIONALLY_ALLOWED_TENANTS: "fabrikam.onmicrosoft.com; x" },
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE, { tenantId: "fabrikam.onmicrosoft.com" })
          assert.strictEqual(requests[0]!.url.pathname, "/fabrikam.onmicrosoft.com/oauth2/v2.0/token")
          const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: "other" })))
          assert.match(
            reason,
            /^ClientSecretCredential \(from AZURE_CLIENT_SECRET\): .*not for the requested tenant other/
          )
          assert.strictEqual(requests.length, 1)
        })
    ))

  it.effect("the secret wins over a certificate and a username/password", () =>
    run({
      ...base,
      AZURE_CLIENT_SECRET: SECRET,
      AZURE_CLIENT_CERTIFICATE_PATH: "/secrets/app.pem",
      AZURE_USERNAME: "user@contoso.com",
      AZURE_PASSWORD: PASSWORD
    }, (credential, requests) =>
      Effect.gen(function*() {
        yield* credential.getToken(SCOPE)
        assert.strictEqual(requests[0]!.form.client_secret, SECRET)
        assert.isUndefined(requests[0]!.form.client_assertion)
        assert.isUndefined(requests[0]!.form.password)
      })))

  it.effect("tenant + client + certificate path → signed assertion; chain sent when asked", () =>
    Effect.gen(function*() {
      const pem = app.certPem + app.keyPem
      for (const [flag, expectX5c] of [["TRUE", true], ["1", true], ["yes", false], ["", false]] as const) {
        yield* run({
          ...base,
          AZURE_CLIENT_SECRET: "",
          AZURE_CLIENT_CERTIFICATE_PATH: "/secrets/app.pem",
          AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: flag,
          AZURE_USERNAME: "user@contoso.com",
          AZURE_PASSWORD: PASSWORD
        }, (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            const form = requests[0]!.form
            assert.strictEqual(form.grant_type, "client_credentials")
            assert.strictEqual(form.client_assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            const header = JSON.parse(Buffer.from(form.client_assertion!.split(".")[0]!, "base64url").toString())
            assert.strictEqual(header.x5c !== undefined, expectX5c, `flag ${JSON.stringify(flag)}`)
            assert.isUndefined(form.client_secret)
          }), { files: { "/secrets/app.pem": pem } })
      }
    }))

  it.effect("a certificate problem is reported as EnvironmentCredential's, naming the inner credential", () =>
    run({ ...base, AZURE_CLIENT_CERTIFICATE_PATH: "/nope.pem", AZURE_CLIENT_CERTIFICATE_PASSWORD: CERT_PASSWORD }, (
      credential
    ) =>
      Effect.gen(function*() {
        const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.match(reason, /^CertificateCredential \(from AZURE_CLIENT_CERTIFICATE_PATH\): /)
        assert.include(reason, "/nope.pem")
      })))

  it.effect("tenant + client + username + password → password grant, with the deprecation warning", () => {
    const logs = captureLogs()
    return run(
      { ...base, AZURE_USERNAME: "user@contoso.com", AZURE_PASSWORD: PASSWORD },
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.strictEqual(requests[0]!.form.grant_type, "password")
          assert.strictEqual(requests[0]!.form.username, "user@contoso.com")
          assert.strictEqual(requests[0]!.form.password, PASSWORD)
          assert.isTrue(logs.lines.some((l) => l.startsWith("WARN") && l.includes("UsernamePasswordCredential")))
          assert.isFalse(logs.lines.some((l) => l.includes(PASSWORD)))
        })
    ).pipe(Effect.provide(logs.layer))
  })

  it.effect("nothing set: unavailable, no request, the message says what to set", () =>
    run({}, (credential) =>
      Effect.gen(function*() {
        const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.strictEqual(
          reason,
          "none of the AZURE_* variables it reads is set: set AZURE_TENANT_ID, AZURE_CLIENT_ID and one of " +
            "AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_USERNAME and AZURE_PASSWORD"
        )
      }), { http: "die" }))

  it.effect("empty values count as unset", () =>
    run(
      { AZURE_TENANT_ID: "", AZURE_CLIENT_ID: " ", AZURE_CLIENT_SECRET: "", AZURE_PASSWORD: "" },
      (credential) =>
        Effect.gen(function*() {
          assert.match(unavailableReason(yield* Effect.exit(credential.getToken(SCOPE))), /^none of the AZURE_/)
        }),
      { http: "die" }
    ))

  it.effect("partial configurations list what is set and what is missing (names only)", () =>
    Effect.gen(function*() {
      const cases: Array<[Record<string, string>, string]> = [
        [
          { AZURE_CLIENT_ID: CLIENT, AZURE_CLIENT_SECRET: SECRET },
          "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are set; for a client secret, AZURE_TENANT_ID is missing"
        ],
        [
          base,
          "AZURE_TENANT_ID and AZURE_CLIENT_ID are set; for a client secret, AZURE_CLIENT_SECRET is missing"
        ],
        [
          { ...base, AZURE_PASSWORD: PASSWORD },
          "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_PASSWORD are set; for a username and password, " +
          "AZURE_USERNAME is missing"
        ],
        [
          { AZURE_CLIENT_CERTIFICATE_PATH: "/a.pem", AZURE_CLIENT_CERTIFICATE_PASSWORD: CERT_PASSWORD },
          "AZURE_CLIENT_CERTIFICATE_PATH and AZURE_CLIENT_CERTIFICATE_PASSWORD are set; for a certificate, " +
          "AZURE_TENANT_ID and AZURE_CLIENT_ID are missing"
        ],
        [
          { AZURE_USERNAME: "someone" },
          "AZURE_USERNAME is set; for a username and password, AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_PASSWORD " +
          "are missing"
        ]
      ]
      for (const [env, expected] of cases) {
        yield* run(env, (credential) =>
          Effect.gen(function*() {
            const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.include(reason, `the environment is not fully configured: ${expected}`)
            assert.include(reason, "(set AZURE_TENANT_ID, AZURE_CLIENT_ID and one of")
          }), { http: "die" })
      }
    }))

  it.effect("a rejected secret is a ClientAuthenticationError from EnvironmentCredential: it stops a chain", () =>
    run({ ...base, AZURE_CLIENT_SECRET: SECRET }, (credential) =>
      Effect.gen(function*() {
        const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        if (error._tag !== "ClientAuthenticationError") return
        assert.strictEqual(error.credential, "EnvironmentCredential")
        assert.strictEqual(error.status, 401)
        assert.strictEqual(error.error, "invalid_client")
        assert.deepStrictEqual(error.errorCodes, [7000215])
        assert.match(error.reason, /^ClientSecretCredential \(from AZURE_CLIENT_SECRET\): /)
        assert.include(error.message, "AADSTS7000215")
      }), {
      answer: () =>
        json(401, {
          error: "invalid_client",
          error_description: "AADSTS7000215: Invalid client secret provided.",
          error_codes: [7000215]
        })
    }))

  it.effect("an invalid tenant from the environment is unavailable before any request", () =>
    run(
      { AZURE_TENANT_ID: "bad tenant", AZURE_CLIENT_ID: CLIENT, AZURE_CLIENT_SECRET: SECRET },
      (credential) =>
        Effect.gen(function*() {
          const reason = unavailableReason(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.include(reason, "ClientSecretCredential (from AZURE_CLIENT_SECRET): invalid tenant id")
        }),
      { http: "die" }
    ))

  it("select and setVariables are pure", () => {
    const none = {
      tenantId: undefined,
      clientId: undefined,
      clientSecret: undefined,
      certificatePath: undefined,
      certificatePassword: undefined,
      sendCertificateChain: undefined,
      username: undefined,
      password: undefined
    }
    assert.deepStrictEqual(EnvironmentCredential.setVariables(none), [])
    const selection = EnvironmentCredential.select({
      ...none,
      tenantId: "t",
      clientId: "c",
      username: "u",
      password: Redacted.make("p")
    })
    assert.strictEqual(selection._tag, "UsernamePassword")
    assert.strictEqual(
      EnvironmentCredential.select({ ...none, tenantId: "t", clientId: "c", username: "u" })._tag,
      "None"
    )
  })
})

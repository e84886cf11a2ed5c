import "reflect-metadata"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as x509 from "@peculiar/x509"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { compactVerify, decodeJwt, decodeProtectedHeader, importX509, jwtVerify } from "jose"
import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  verify as cryptoVerify,
  webcrypto,
  X509Certificate
} from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { CertificateCredential, ClientCertificateCredential, TokenCredential } from "../src/index.js"
import {
  assertNoSecret,
  captureLogs,
  failureOf,
  memoryFs,
  setNow,
  T0,
  withCredentialOver,
  withEnv
} from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { dieHttp, json, mockHttp, tokenBody } from "./support/mockHttp.js"
import { makeCertificateAuthority, makeSelfSigned, toEncryptedPkcs8, toPkcs1 } from "./support/tls.js"

const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const SCOPE = "https://vault.azure.net/.default"
const AUTHORITY = "https://login.example.test"
const ENDPOINT = `${AUTHORITY}/${TENANT}/oauth2/v2.0/token`
const PASSWORD = "pem-p@ssw0rd!"
const NOW = T0 / 1000

const ca = await makeCertificateAuthority()
const leaf = await ca.issue({ commonName: "app-with-chain" })
const app = await makeSelfSigned({ commonName: "app" })
const other = await makeSelfSigned({ commonName: "someone-else" })
const shortKeyPem = await makeShortKeyPem()
const ecKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey
const ecPkcs8 = ecKey.export({ type: "pkcs8", format: "pem" }) as string
const ecSec1 = ecKey.export({ type: "sec1", format: "pem" }) as string

const b64url = (hex: string) => Buffer.from(hex, "hex").toString("base64url")
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Chunks of the private key's base64 body: none may appear in any error. */
const keyMaterial = (keyPem: string): Array<string> => {
  const body = keyPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "")
  const chunks: Array<string> = []
  for (let i = 0; i + 24 <= body.length; i += 24) chunks.push(body.slice(i, i + 24))
  return chunks
}

const options = (extra: Partial<CertificateCredential.CommonOptions> = {}) => ({
  tenantId: TENANT,
  clientId: CLIENT,
  authorityHost: AUTHORITY,
  ...extra
})

/** Runs `f` with the credential built over a mock HTTP client and an in-memory FileSystem. */
const withCredential = <A, E>(
  credentialOptions: CertificateCredential.Options,
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  files: Map<string, string> = new Map()
) =>
  withCredentialOver(CertificateCredential.layer(credentialOptions), handler, f, {
    deps: (http) => Layer.merge(http.layer, memoryFs(files).layer)
  })

/** The error of a credential that must fail before any network request. */
const unavailableWith = (credentialOptions: CertificateCredential.Options, files: Map<string, string> = new Map()) =>
  Effect.gen(function*() {
    yield* setNow
    const credential = yield* TokenCredential.TokenCredential
    return failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
  }).pipe(
    Effect.provide(
      CertificateCredential.layer(credentialOptions).pipe(Layer.provide(Layer.merge(dieHttp, memoryFs(files).layer)))
    ),
    withEnv({})
  )

/**
 * Signing is real async work (WebCrypto): give the event loop turns until the forked request sleeps on the TestClock
 * (the retry delay). No wall-clock sleep: each turn is a setImmediate.
 */
const untilSleeping = Effect.gen(function*() {
  for (let i = 0; i < 10_000; i++) {
    if ((yield* TestClock.sleeps()).length > 0) return
    yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
  }
  throw new Error("the request never reached its retry delay")
})

const assertionOf = (request: Recorded) => request.form.client_assertion!

/** Verifies the signature with the certificate's public key (jose), and again with node:crypto's own primitives. */
const verifyWith = (jwt: string, certPem: string, alg: "PS256" | "RS256") =>
  Effect.promise(async () => {
    const key = await importX509(certPem, alg)
    const verified = await jwtVerify(jwt, key, {
      algorithms: [alg],
      audience: ENDPOINT,
      issuer: CLIENT,
      subject: CLIENT,
      currentDate: new Date(T0)
    })
    const [h, p, s] = jwt.split(".")
    const publicKey = createPublicKey(certPem)
    const nodeOk = cryptoVerify(
      "sha256",
      Buffer.from(`${h}.${p}`),
      alg === "PS256"
        ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
        : { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
      Buffer.from(s!, "base64url")
    )
    return { verified, nodeOk }
  })

const rejectsWith = (jwt: string, certPem: string, alg: "PS256" | "RS256") =>
  Effect.promise(async () => {
    try {
      await compactVerify(jwt, await importX509(certPem, alg), { algorithms: [alg] })
      return false
    } catch {
      return true
    }
  })

describe("CertificateCredential", () => {
  it.effect("PS256 + x5t#S256 by default: every header field and claim, verified with the certificate", () =>
    withCredential(
      { ...options(), certificate: app.certPem + app.keyPem },
      () => json(200, tokenBody("tok-1")),
      (credential, requests) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(Redacted.value(token.token), "tok-1")
          assert.strictEqual(requests.length, 1)
          const r = requests[0]!
          assert.strictEqual(r.url.href, ENDPOINT)
          assert.deepStrictEqual(Object.keys(r.form).sort(), [
            "client_assertion",
            "client_assertion_type",
            "client_id",
            "grant_type",
            "scope"
          ])
          assert.strictEqual(r.form.client_id, CLIENT)
          assert.strictEqual(r.form.grant_type, "client_credentials")
          assert.strictEqual(r.form.client_assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
          assert.strictEqual(r.form.scope, SCOPE)
          const jwt = assertionOf(r)
          assert.deepStrictEqual(decodeProtectedHeader(jwt), {
            alg: "PS256",
            typ: "JWT",
            "x5t#S256": b64url(app.sha256Hex)
          })
          const claims = decodeJwt(jwt)
          assert.match(String(claims.jti), UUID_V4)
          assert.deepStrictEqual(claims, {
            aud: ENDPOINT,
            iss: CLIENT,
            sub: CLIENT,
            jti: String(claims.jti),
            nbf: NOW,
            iat: NOW,
            exp: NOW + 600
          })
          const { nodeOk, verified } = yield* verifyWith(jwt, app.certPem, "PS256")
          assert.strictEqual(verified.protectedHeader.alg, "PS256")
          assert.isTrue(nodeOk)
          // negative controls: another certificate's key, or the other algorithm, do not verify it
          assert.isTrue(yield* rejectsWith(jwt, other.certPem, "PS256"))
          assert.isTrue(yield* rejectsWith(jwt, app.certPem, "RS256"))
        })
    ))

  it.effect("RS256 + x5t (SHA-1) when asked, verified with the certificate", () =>
    withCredential(
      { ...options({ signingAlgorithm: "RS256" }), certificate: app.certPem + app.keyPem },
      () => json(200, tokenBody()),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          const jwt = assertionOf(requests[0]!)
          assert.deepStrictEqual(decodeProtectedHeader(jwt), { alg: "RS256", typ: "JWT", x5t: b64url(app.sha1Hex) })
          const claims = decodeJwt(jwt)
          assert.deepStrictEqual(Object.keys(claims), ["aud", "iss", "sub", "jti", "nbf", "iat", "exp"])
          assert.strictEqual(claims.exp, NOW + 600)
          const { nodeOk } = yield* verifyWith(jwt, app.certPem, "RS256")
          assert.isTrue(nodeOk)
          assert.isTrue(yield* rejectsWith(jwt, app.certPem, "PS256"))
        })
    ))

  for (const alg of ["PS256", "RS256"] as const) {
    it.effect(`${alg} with sendCertificateChain: x5c is the chain, leaf first, standard base64 DER`, () =>
      withCredential(
        {
          ...options({ signingAlgorithm: alg, sendCertificateChain: true }),
          certificate: leaf.certPem + ca.certPem + leaf.keyPem
        },
        () => json(200, tokenBody()),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            const jwt = assertionOf(requests[0]!)
            const header = decodeProtectedHeader(jwt)
            const x5c = [leaf.der.toString("base64"), ca.der.toString("base64")]
            assert.deepStrictEqual(
              header,
              alg === "PS256"
                ? { alg, typ: "JWT", "x5t#S256": b64url(leaf.sha256Hex), x5c }
                : { alg, typ: "JWT", x5t: b64url(leaf.sha1Hex), x5c }
            )
            for (const entry of header.x5c!) {
              assert.notMatch(entry, /[\r\n\s]/)
              assert.doesNotThrow(() => new X509Certificate(Buffer.from(entry, "base64")))
            }
            assert.strictEqual(new X509Certificate(Buffer.from(header.x5c![0]!, "base64")).subject, "CN=app-with-chain")
            const { nodeOk, verified } = yield* verifyWith(jwt, leaf.certPem, alg)
            assert.isTrue(nodeOk)
            assert.strictEqual(verified.payload.aud, ENDPOINT)
          })
      ))
  }

  it.effect("without sendCertificateChain no x5c is sent, even when the PEM holds a chain", () =>
    withCredential(
      { ...options(), certificate: leaf.certPem + ca.certPem + leaf.keyPem },
      () => json(200, tokenBody()),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          const header = decodeProtectedHeader(assertionOf(requests[0]!))
          assert.isUndefined(header.x5c)
          // thumbprint of the first certificate (the leaf), not the CA
          assert.strictEqual(header["x5t#S256"], b64url(leaf.sha256Hex))
        })
    ))

  const keyFormats: ReadonlyArray<[string, string, string | undefined]> = [
    ["PKCS#8", app.keyPem, undefined],
    ["PKCS#1", toPkcs1(app.keyPem), undefined],
    ["encrypted PKCS#8", toEncryptedPkcs8(app.keyPem, PASSWORD), PASSWORD],
    ["legacy encrypted PKCS#1", toPkcs1(app.keyPem, PASSWORD), PASSWORD]
  ]
  for (const [label, keyPem, password] of keyFormats) {
    it.effect(`reads a ${label} key (CRLF line endings, key before the certificate) and signs with it`, () =>
      withCredential(
        {
          ...options(password === undefined ? {} : { certificatePassword: Redacted.make(password) }),
          certificate: Redacted.make((keyPem + app.certPem).replace(/\n/g, "\r\n"))
        },
        () => json(200, tokenBody()),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            const jwt = assertionOf(requests[0]!)
            assert.strictEqual(decodeProtectedHeader(jwt)["x5t#S256"], b64url(app.sha256Hex))
            assert.isTrue((yield* verifyWith(jwt, app.certPem, "PS256")).nodeOk)
          })
      ))
  }

  it.effect("a fresh assertion for every network request, none on a cache hit; aud follows the tenant", () =>
    withCredential(
      { ...options({ additionallyAllowedTenants: ["*"] }), certificate: app.certPem + app.keyPem },
      (_, i) => json(200, tokenBody(`tok-${i + 1}`)),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          yield* TestClock.adjust("5 minutes")
          yield* credential.getToken(SCOPE)
          assert.strictEqual(requests.length, 1)
          yield* credential.getToken("https://graph.microsoft.com/.default")
          yield* credential.getToken(SCOPE, { tenantId: "contoso.onmicrosoft.com" })
          assert.strictEqual(requests.length, 3)
          const claims = requests.map((r) => decodeJwt(assertionOf(r)))
          assert.strictEqual(new Set(claims.map((c) => c.jti)).size, 3)
          assert.deepStrictEqual(claims.map((c) => c.nbf), [NOW, NOW + 300, NOW + 300])
          assert.deepStrictEqual(claims.map((c) => c.exp), [NOW + 600, NOW + 900, NOW + 900])
          assert.strictEqual(claims[2]!.aud, `${AUTHORITY}/contoso.onmicrosoft.com/oauth2/v2.0/token`)
          assert.strictEqual(requests[2]!.url.href, claims[2]!.aud)
        })
    ))

  it.effect("a retried request carries a new assertion signed at the time of the retry", () =>
    withCredential(
      { ...options(), certificate: app.certPem + app.keyPem },
      (_, i) =>
        i === 0 ? json(429, { error: "temporarily_unavailable" }, { "retry-after": "5" }) : json(200, tokenBody()),
      (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(credential.getToken(SCOPE))
          yield* untilSleeping
          assert.strictEqual(requests.length, 1)
          yield* TestClock.adjust("5 seconds")
          yield* Fiber.join(fiber)
          assert.strictEqual(requests.length, 2)
          const [first, second] = requests.map((r) => decodeJwt(assertionOf(r)))
          assert.notStrictEqual(first!.jti, second!.jti)
          assert.strictEqual(second!.nbf, first!.nbf! + 5)
        })
    ))

  it.effect("reads the PEM file through FileSystem and picks up a renewed certificate", () => {
    const files = new Map([["/secrets/app.pem", app.certPem + app.keyPem]])
    return withCredential(
      { ...options(), certificatePath: "/secrets/app.pem" },
      () => json(200, tokenBody()),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          files.set("/secrets/app.pem", other.certPem + other.keyPem)
          yield* credential.getToken(SCOPE) // cache hit: nothing read, nothing signed
          assert.strictEqual(requests.length, 1)
          yield* credential.getToken("https://graph.microsoft.com/.default")
          const [first, second] = requests.map((r) => decodeProtectedHeader(assertionOf(r))["x5t#S256"])
          assert.strictEqual(first, b64url(app.sha256Hex))
          assert.strictEqual(second, b64url(other.sha256Hex))
          // the file is deleted: the next network request fails, typed
          files.delete("/secrets/app.pem")
          const error = failureOf(yield* Effect.exit(credential.getToken("https://storage.azure.com/.default")))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "/secrets/app.pem could not be read (it does not exist)")
        }),
      files
    )
  })

  it.effect("works with a real file in a temp directory (NodeFileSystem)", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(nodePath.join(os.tmpdir(), "eai-cert-"))),
        (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
      )
      const path = nodePath.join(dir, "app.pem")
      fs.writeFileSync(path, leaf.certPem + ca.certPem + toEncryptedPkcs8(leaf.keyPem, PASSWORD))
      const http = mockHttp(() => json(200, tokenBody("from-file")))
      yield* setNow
      const token = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.provide(
          CertificateCredential.layerConfig().pipe(Layer.provide(Layer.merge(http.layer, NodeFileSystem.layer)))
        ),
        withEnv({
          AZURE_TENANT_ID: TENANT,
          AZURE_CLIENT_ID: CLIENT,
          AZURE_CLIENT_CERTIFICATE_PATH: path,
          AZURE_CLIENT_CERTIFICATE_PASSWORD: PASSWORD,
          AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: "true",
          AZURE_AUTHORITY_HOST: AUTHORITY
        })
      )
      assert.strictEqual(Redacted.value(token.token), "from-file")
      const header = decodeProtectedHeader(assertionOf(http.requests[0]!))
      assert.strictEqual(header.x5c?.length, 2)
      assert.isTrue((yield* verifyWith(assertionOf(http.requests[0]!), leaf.certPem, "PS256")).nodeOk)
    }).pipe(Effect.scoped))

  it.effect("a certificate Entra rejects is a ClientAuthenticationError with a hint", () =>
    withCredential(
      { ...options(), certificate: app.certPem + app.keyPem },
      () =>
        json(401, {
          error: "invalid_client",
          error_description: "AADSTS700027: Client assertion contains an invalid signature.",
          error_codes: [700027]
        }),
      (credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "ClientAuthenticationError")
          assert.include(error.message, "upload this certificate to the app registration")
          assertNoSecret(error, ...keyMaterial(app.keyPem))
        })
    ))

  it.effect("logs the thumbprint of the signing certificate, never the assertion", () => {
    const logs = captureLogs()
    return withCredential(
      { ...options(), certificate: app.certPem + app.keyPem },
      () => json(200, tokenBody()),
      (credential, requests) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          const all = logs.lines.join("\n")
          assert.include(all, app.sha1Hex)
          assert.notInclude(all, assertionOf(requests[0]!).split(".")[2]!)
        }).pipe(Effect.provide(logs.layer))
    )
  })

  it("is also exported as ClientCertificateCredential", () => {
    assert.strictEqual(ClientCertificateCredential.make, CertificateCredential.make)
    assert.strictEqual(ClientCertificateCredential.name, "CertificateCredential")
  })
})

describe("CertificateCredential bad input: typed errors without key material, no network", () => {
  const material = [...keyMaterial(app.keyPem), ...keyMaterial(ecPkcs8), PASSWORD, "wrong-password"]
  const cases: ReadonlyArray<{
    readonly name: string
    readonly options: CertificateCredential.Options
    readonly files?: Map<string, string>
    readonly expect: string
  }> = [
    {
      name: "missing file",
      options: { ...options(), certificatePath: "/nope/app.pem" },
      expect: "the certificate file /nope/app.pem could not be read (it does not exist)"
    },
    {
      name: "unreadable file",
      options: { ...options(), certificatePath: "/secrets/app.pem" },
      files: new Map([["/secrets/app.pem", "<denied>"]]),
      expect: "could not be read (permission denied)"
    },
    {
      name: "file without a certificate",
      options: { ...options(), certificatePath: "/secrets/key-only.pem" },
      files: new Map([["/secrets/key-only.pem", app.keyPem]]),
      expect: "does not contain a PEM-encoded certificate"
    },
    {
      name: "file without a key",
      options: { ...options(), certificatePath: "/secrets/cert-only.pem" },
      files: new Map([["/secrets/cert-only.pem", app.certPem]]),
      expect: "does not contain a private key"
    },
    {
      name: "empty file",
      options: { ...options(), certificatePath: "/secrets/empty.pem" },
      files: new Map([["/secrets/empty.pem", ""]]),
      expect: "does not contain a PEM-encoded certificate"
    },
    {
      name: "encrypted PKCS#8 key without a password",
      options: { ...options(), certificate: app.certPem + toEncryptedPkcs8(app.keyPem, PASSWORD) },
      expect: "the private key is encrypted and no password was given"
    },
    {
      name: "legacy encrypted PKCS#1 key with an empty password",
      options: {
        ...options({ certificatePassword: Redacted.make("") }),
        certificate: app.certPem + toPkcs1(app.keyPem, PASSWORD)
      },
      expect: "the private key is encrypted and no password was given"
    },
    {
      name: "encrypted PKCS#8 key with a wrong password",
      options: {
        ...options({ certificatePassword: Redacted.make("wrong-password") }),
        certificate: app.certPem + toEncryptedPkcs8(app.keyPem, PASSWORD)
      },
      expect: "the private key could not be decrypted"
    },
    {
      name: "legacy encrypted PKCS#1 key with a wrong password",
      options: {
        ...options({ certificatePassword: Redacted.make("wrong-password") }),
        certificate: app.certPem + toPkcs1(app.keyPem, PASSWORD)
      },
      expect: "the private key could not be decrypted"
    },
    {
      name: "an EC key (PKCS#8)",
      options: { ...options(), certificate: app.certPem + ecPkcs8 },
      expect: "the private key is not an RSA key (ec)"
    },
    {
      name: "an EC key (SEC1)",
      options: { ...options(), certificate: app.certPem + ecSec1 },
      expect: "the private key is not an RSA key (EC PRIVATE KEY)"
    },
    {
      name: "a key that is not the certificate's",
      options: { ...options(), certificate: app.certPem + other.keyPem },
      expect: "the private key does not belong to the first certificate"
    },
    {
      name: "garbage PEM",
      options: { ...options(), certificate: "this is not a PEM file at all" },
      expect: "does not contain a PEM-encoded certificate"
    },
    {
      name: "a certificate block that is not base64",
      options: {
        ...options(),
        certificate: "-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n" + app.keyPem
      },
      expect: "is not valid base64"
    },
    {
      name: "a certificate block that is not a certificate",
      options: {
        ...options(),
        certificate: "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n" + app.keyPem
      },
      expect: "is not an X.509 certificate"
    },
    {
      name: "a chain certificate that is garbage",
      options: {
        ...options(),
        certificate: app.certPem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + app.keyPem
      },
      expect: "is not an X.509 certificate"
    },
    {
      name: "a key block that is garbage",
      options: {
        ...options(),
        certificate: app.certPem + "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n"
      },
      expect: "the private key could not be read"
    },
    {
      name: "no certificate at all",
      options: { ...options(), certificatePath: "" },
      expect: "no certificate was given: set certificatePath (or AZURE_CLIENT_CERTIFICATE_PATH)"
    },
    {
      name: "both a path and PEM text",
      options: { ...options(), certificatePath: "/a.pem", certificate: app.certPem } as never,
      expect: "both certificatePath and certificate were given"
    }
  ]
  for (const c of cases) {
    it.effect(c.name, () =>
      Effect.gen(function*() {
        const error = yield* unavailableWith(c.options, c.files)
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.strictEqual(error.credential, "CertificateCredential")
        assert.include(error.message, c.expect)
        assertNoSecret(error, ...material)
        assert.notInclude(error.message, "PRIVATE KEY-----")
      }))
  }

  it.effect("an RSA key shorter than 2048 bits cannot sign", () =>
    Effect.gen(function*() {
      const error = yield* unavailableWith({ ...options(), certificate: shortKeyPem })
      assert.include(error.message, "the RSA key is too short to sign PS256")
    }))

  it.effect("layerConfig: missing variables name them; an invalid flag is reported; empty password is unset", () =>
    Effect.gen(function*() {
      const build = (env: Record<string, string>, files = new Map<string, string>()) =>
        Effect.gen(function*() {
          const credential = yield* TokenCredential.TokenCredential
          return failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
        }).pipe(
          Effect.provide(
            CertificateCredential.layerConfig().pipe(Layer.provide(Layer.merge(dieHttp, memoryFs(files).layer)))
          ),
          withEnv(env)
        )
      const missing = yield* build({ AZURE_TENANT_ID: TENANT })
      assert.include(missing.message, "missing configuration: AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH")
      const base = { AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT, AZURE_CLIENT_CERTIFICATE_PATH: "/c.pem" }
      const flag = yield* build({ ...base, AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: "maybe" })
      assert.include(flag.message, "invalid configuration: AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
      const encrypted = new Map([["/c.pem", app.certPem + toEncryptedPkcs8(app.keyPem, PASSWORD)]])
      const noPassword = yield* build({ ...base, AZURE_CLIENT_CERTIFICATE_PASSWORD: "" }, encrypted)
      assert.include(noPassword.message, "no password was given")
      const wrong = yield* build({ ...base, AZURE_CLIENT_CERTIFICATE_PASSWORD: "wrong-password" }, encrypted)
      assert.include(wrong.message, "could not be decrypted")
      assertNoSecret(wrong, "wrong-password", ...keyMaterial(app.keyPem))
    }))

  it.effect("layerConfig: flags and password from the environment", () =>
    Effect.gen(function*() {
      const http = mockHttp(() => json(200, tokenBody()))
      const files = new Map([["/c.pem", leaf.certPem + ca.certPem + toPkcs1(leaf.keyPem, PASSWORD)]])
      yield* setNow
      for (const [value, chain] of [["1", true], ["YES", true], ["false", false], ["", false]] as const) {
        yield* TokenCredential.getToken(SCOPE).pipe(
          Effect.provide(
            CertificateCredential.layerConfig().pipe(Layer.provide(Layer.merge(http.layer, memoryFs(files).layer)))
          ),
          withEnv({
            AZURE_TENANT_ID: TENANT,
            AZURE_CLIENT_ID: CLIENT,
            AZURE_CLIENT_CERTIFICATE_PATH: "/c.pem",
            AZURE_CLIENT_CERTIFICATE_PASSWORD: PASSWORD,
            AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: value,
            AZURE_AUTHORITY_HOST: AUTHORITY
          })
        )
        const header = decodeProtectedHeader(assertionOf(http.requests.at(-1)!))
        assert.strictEqual(header.x5c !== undefined, chain, `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=${value}`)
      }
      assert.strictEqual(http.requests.length, 4)
    }))
})

/** A self-signed certificate with a 1024-bit RSA key (tls.ts makes 2048-bit keys only), PEM with its key. */
async function makeShortKeyPem(): Promise<string> {
  const alg = {
    name: "RSASSA-PKCS1-v1_5",
    hash: "SHA-256",
    publicExponent: new Uint8Array([1, 0, 1]),
    modulusLength: 1024
  }
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "0b",
    name: "CN=short-key",
    keys,
    signingAlgorithm: alg,
    notBefore: new Date(T0 - 86_400_000),
    notAfter: new Date(T0 + 86_400_000)
  })
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey))
  return cert.toString("pem") + "\n" +
    (createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ type: "pkcs8", format: "pem" }) as string)
}

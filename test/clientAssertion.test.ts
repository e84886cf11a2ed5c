/**
 * The internal certificate parser and assertion signer, on their own: property tests (never a throw, never key
 * material in a description) and the branches the credential tests do not reach.
 */
import * as PlatformError from "@effect/platform/Error"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import { decodeJwt, decodeProtectedHeader } from "jose"
import { createPublicKey } from "node:crypto"
import { certificateBlocks, parse } from "../src/internal/certificate.js"
import {
  assertionFields,
  assertionType,
  certificateAssertionFields,
  prepareCertificate,
  readFailure,
  sign
} from "../src/internal/clientAssertion.js"
import { failureOf, layerFileReads, memoryFile, setNow, T0 } from "./support/helpers.js"
import { makeSelfSigned, toEncryptedPkcs8 } from "./support/tls.js"

const app = await makeSelfSigned({ commonName: "unit-app" })
const PEM = app.certPem + app.keyPem
const keyBody = app.keyPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "")

describe("certificate parsing", () => {
  it.effect.prop(
    "parse never throws on arbitrary text, and never echoes it",
    [FastCheck.string({ minLength: 8 })],
    ([s]) =>
      Effect.sync(() => {
        const result = parse(s, undefined)
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) assert.notInclude(result.left.message, s)
      })
  )

  it.effect.prop(
    "PEM-shaped blocks of random base64 are rejected with a description",
    [FastCheck.base64String({ minLength: 4, maxLength: 400 }), FastCheck.constantFrom("CERTIFICATE", "PRIVATE KEY")],
    ([body, label]) =>
      Effect.sync(() => {
        const block = `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`
        const result = parse(label === "CERTIFICATE" ? block + app.keyPem : app.certPem + block, undefined)
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) assert.notInclude(result.left.message, keyBody.slice(0, 24))
      })
  )

  it.effect.prop(
    "a password never appears in a description",
    [FastCheck.string({ minLength: 6, maxLength: 40 }).filter((p) => p.trim().length >= 6)],
    ([password]) =>
      Effect.sync(() => {
        const result = parse(app.certPem + toEncryptedPkcs8(app.keyPem, "the-real-one"), Redacted.make(password))
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) {
          assert.include(result.left.message, "could not be decrypted")
          assert.notInclude(result.left.message, password)
        }
      }),
    { fastCheck: { numRuns: 10 } }
  )

  it("certificate blocks tolerate CRLF and keep file order", () => {
    const blocks = certificateBlocks((app.certPem + app.certPem).replace(/\n/g, "\r\n"))
    assert.isTrue(Either.isRight(blocks))
    if (Either.isRight(blocks)) {
      assert.strictEqual(blocks.right.length, 2)
      assert.isTrue(blocks.right[0]!.equals(app.der))
    }
  })

  it("thumbprints are over the DER of the first certificate", () => {
    const parsed = Either.getOrThrow(parse(PEM, undefined))
    assert.strictEqual(parsed.thumbprint, app.sha1Hex)
    assert.strictEqual(parsed.x5t, Buffer.from(app.sha1Hex, "hex").toString("base64url"))
    assert.strictEqual(parsed.x5tS256, Buffer.from(app.sha256Hex, "hex").toString("base64url"))
    assert.deepStrictEqual(parsed.x5c, [app.der.toString("base64")])
    assert.isTrue(parsed.publicKey.equals(createPublicKey(app.certPem)))
  })
})

describe("client assertion", () => {
  it("assertionFields wraps a plain or redacted assertion", () => {
    const plain = assertionFields("a.b.c")
    assert.strictEqual(Redacted.value(plain.client_assertion), "a.b.c")
    assert.strictEqual(plain.client_assertion_type, assertionType)
    const secret = Redacted.make("x.y.z")
    assert.strictEqual(assertionFields(secret).client_assertion, secret)
  })

  it.effect("sign: a key that cannot sign is a description, not a defect", () =>
    Effect.gen(function*() {
      const parsed = Either.getOrThrow(parse(PEM, undefined))
      // a public key where the private key belongs
      const broken = { ...parsed, privateKey: parsed.publicKey }
      const error = failureOf(
        yield* Effect.exit(
          sign(broken, { clientId: "c", tokenEndpoint: "https://e/t", algorithm: "RS256", sendCertificateChain: false })
        )
      )
      assert.strictEqual(
        error,
        "the private key could not sign the RS256 client assertion: check that it is a valid RSA key"
      )
    }))

  it.effect("the reusable entry point: prepareCertificate + certificateAssertionFields", () =>
    Effect.gen(function*() {
      yield* setNow
      const prepared = yield* prepareCertificate("OnBehalfOfCredential", {
        certificate: Redacted.make(PEM),
        sendCertificateChain: true,
        signingAlgorithm: "RS256"
      })
      const fields = yield* certificateAssertionFields(
        prepared,
        "client-1",
        "https://login.example.test/t/oauth2/v2.0/token"
      )
      assert.strictEqual(fields.client_assertion_type, assertionType)
      const jwt = Redacted.value(fields.client_assertion)
      assert.deepStrictEqual(Object.keys(decodeProtectedHeader(jwt)), ["alg", "typ", "x5t", "x5c"])
      const claims = decodeJwt(jwt)
      assert.strictEqual(claims.aud, "https://login.example.test/t/oauth2/v2.0/token")
      assert.strictEqual(claims.iss, "client-1")
      assert.strictEqual(claims.nbf, T0 / 1000)
    }))

  it.effect("a certificate path without a FileSystem service is unavailable, naming the path", () =>
    Effect.gen(function*() {
      const prepared = yield* prepareCertificate("OnBehalfOfCredential", { certificatePath: "/c.pem" })
      const error = failureOf(yield* Effect.exit(certificateAssertionFields(prepared, "c", "https://e/t")))
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.strictEqual(error.credential, "OnBehalfOfCredential")
      assert.include(error.message, "no FileSystem service to read /c.pem")
    }))

  it.effect("the file is parsed again only when its content changes", () =>
    Effect.gen(function*() {
      let content = PEM
      let reads = 0
      const fsLayer = layerFileReads({
        open: () =>
          Effect.sync(() => {
            reads++
            return memoryFile(new TextEncoder().encode(content))
          }),
        readFileString: () => Effect.sync(() => content)
      })
      const prepared = yield* prepareCertificate("CertificateCredential", { certificatePath: "/c.pem" }).pipe(
        Effect.provide(fsLayer)
      )
      const first = yield* prepared.load
      const second = yield* prepared.load
      assert.strictEqual(first, second)
      content = app.keyPem + app.certPem
      const third = yield* prepared.load
      assert.notStrictEqual(third, first)
      assert.strictEqual(third.thumbprint, first.thumbprint)
      assert.strictEqual(reads, 3)
    }))

  it("readFailure describes every platform error without its message", () => {
    const system = (reason: PlatformError.SystemErrorReason) =>
      new PlatformError.SystemError({ reason, module: "FileSystem", method: "readFileString", pathOrDescriptor: "/p" })
    assert.include(readFailure("file", "/p", system("NotFound"), "fix"), "(it does not exist): fix")
    assert.include(readFailure("file", "/p", system("PermissionDenied"), "fix"), "(permission denied)")
    assert.include(readFailure("file", "/p", system("BadResource"), "fix"), "(BadResource)")
    const bad = new PlatformError.BadArgument({ module: "FileSystem", method: "readFileString", description: "nul" })
    assert.strictEqual(readFailure("file", "/p", bad, "fix"), "the file /p could not be read (invalid path): fix")
  })
})

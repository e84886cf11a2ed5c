/**
 * PEM certificates and RSA private keys for client assertions, parsed with `node:crypto`.
 *
 * One PEM text holds the certificate(s) (leaf first) and the private key. Accepted keys: PKCS#8
 * (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`), encrypted PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`) and the
 * legacy OpenSSL-encrypted PKCS#1 (`Proc-Type: 4,ENCRYPTED`), the last two with a password. RSA only.
 *
 * Every problem is a description string saying what to do. No description ever contains key material, the
 * password, or text from the PEM: only fixed sentences (and the file path, given by the caller).
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { createHash, createPrivateKey, X509Certificate } from "node:crypto"
import type { KeyObject } from "node:crypto"
import { InvalidArgumentError } from "../IdentityError.js"

/** A certificate and its private key, ready to sign assertions. @internal */
export interface ParsedCertificate {
  /** The RSA private key. */
  readonly privateKey: KeyObject
  /** The public key of the first (leaf) certificate: what the server verifies the assertion with. */
  readonly publicKey: KeyObject
  /** base64url (no padding) SHA-1 of the DER of the first certificate: the `x5t` header. */
  readonly x5t: string
  /** base64url (no padding) SHA-256 of the DER of the first certificate: the `x5t#S256` header. */
  readonly x5tS256: string
  /** Every certificate of the PEM, standard base64 DER without line breaks, leaf (first) first: the `x5c` header. */
  readonly x5c: ReadonlyArray<string>
  /** Hex SHA-1 thumbprint, upper case (what the Azure portal shows), for messages and logs. */
  readonly thumbprint: string
}

const certificateBlock = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g
const keyBlock = /-----BEGIN ((?:RSA |ENCRYPTED |EC |DSA |OPENSSH )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/

/** A problem with the certificate (or its password), as a typed error. */
const invalid = (argument: string, reason: string) => Either.left(new InvalidArgumentError({ argument, reason }))

const base64url = (bytes: Buffer): string => bytes.toString("base64url")

/** The DER of every `CERTIFICATE` block, in file order; line endings `\n` or `\r\n`. @internal */
export const certificateBlocks = (pem: string): Either.Either<ReadonlyArray<Buffer>, InvalidArgumentError> => {
  const blocks: Array<Buffer> = []
  for (const match of pem.matchAll(certificateBlock)) {
    const body = match[1]!.replace(/\s+/g, "")
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
      return invalid(
        "certificate",
        "a CERTIFICATE block of the PEM is not valid base64: export the certificate again as PEM"
      )
    }
    blocks.push(Buffer.from(body, "base64"))
  }
  if (blocks.length === 0) {
    return invalid(
      "certificate",
      "the PEM does not contain a PEM-encoded certificate (-----BEGIN CERTIFICATE-----): the file must hold the " +
        "certificate and its private key"
    )
  }
  return Either.right(blocks)
}

const parseCertificate = (der: Buffer): Either.Either<X509Certificate, InvalidArgumentError> => {
  try {
    return Either.right(new X509Certificate(der))
  } catch {
    return invalid(
      "certificate",
      "a CERTIFICATE block of the PEM is not an X.509 certificate: export the certificate again as PEM"
    )
  }
}

const isEncrypted = (block: string, label: string): boolean =>
  label === "ENCRYPTED PRIVATE KEY" || /Proc-Type:\s*4,\s*ENCRYPTED/i.test(block)

/** The private key of the PEM, decrypted with the password when it is encrypted; RSA only. @internal */
export const privateKey = (
  pem: string,
  password: Redacted.Redacted<string> | undefined
): Either.Either<KeyObject, InvalidArgumentError> => {
  const match = keyBlock.exec(pem)
  if (match === null) {
    return invalid(
      "certificate",
      "the PEM does not contain a private key (a PRIVATE KEY, RSA PRIVATE KEY or ENCRYPTED PRIVATE KEY block): " +
        "the file must hold the certificate and its private key"
    )
  }
  const label = match[1]!
  if (label === "EC PRIVATE KEY" || label === "DSA PRIVATE KEY" || label === "OPENSSH PRIVATE KEY") {
    return invalid(
      "certificate",
      `the private key is not an RSA key (${label}): client assertions are signed with RSA (RS256/PS256), use an ` +
        "RSA certificate"
    )
  }
  const block = match[0].replace(/\r\n/g, "\n")
  const encrypted = isEncrypted(block, label)
  const passphrase = password === undefined ? "" : Redacted.value(password)
  if (encrypted && passphrase === "") {
    return invalid(
      "certificatePassword",
      "the private key is encrypted and no password was given: set certificatePassword or " +
        "AZURE_CLIENT_CERTIFICATE_PASSWORD"
    )
  }
  let key: KeyObject
  try {
    key = encrypted
      ? createPrivateKey({ key: block, format: "pem", passphrase })
      : createPrivateKey({ key: block, format: "pem" })
  } catch {
    return invalid(
      encrypted ? "certificatePassword" : "certificate",
      encrypted
        ? "the private key could not be decrypted: check certificatePassword / AZURE_CLIENT_CERTIFICATE_PASSWORD"
        : "the private key could not be read: it is not a valid PEM key, export it again (PKCS#8 or PKCS#1)"
    )
  }
  if (key.asymmetricKeyType !== "rsa") {
    return invalid(
      "certificate",
      `the private key is not an RSA key (${key.asymmetricKeyType ?? "unknown type"}): client assertions are signed ` +
        "with RSA (RS256/PS256), use an RSA certificate"
    )
  }
  return Either.right(key)
}

/**
 * Parses a PEM holding the certificate(s) and the private key. Thumbprints are over the DER of the first certificate,
 * which must be the key's certificate (the leaf).
 *
 * @internal
 */
export const parse = (
  pem: string,
  password: Redacted.Redacted<string> | undefined
): Either.Either<ParsedCertificate, InvalidArgumentError> =>
  Either.gen(function*() {
    const ders = yield* certificateBlocks(pem)
    const leaf = yield* parseCertificate(ders[0]!)
    for (const der of ders.slice(1)) yield* parseCertificate(der)
    const key = yield* privateKey(pem, password)
    let matches = false
    try {
      matches = leaf.checkPrivateKey(key)
    } catch {
      matches = false
    }
    if (!matches) {
      return yield* invalid(
        "certificate",
        "the private key does not belong to the first certificate of the PEM: put the key's own certificate first"
      )
    }
    const der = ders[0]!
    return {
      privateKey: key,
      publicKey: leaf.publicKey,
      x5t: base64url(createHash("sha1").update(der).digest()),
      x5tS256: base64url(createHash("sha256").update(der).digest()),
      x5c: ders.map((d) => d.toString("base64")),
      thumbprint: createHash("sha1").update(der).digest("hex").toUpperCase()
    }
  })

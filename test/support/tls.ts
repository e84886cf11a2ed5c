/**
 * Test certificates made for the run (never real credentials): a CA, and leaf certificates it signs, as PEM.
 * Used for https loopback servers (clients trust the CA) and for client-certificate tests.
 */
import "reflect-metadata"
import * as x509 from "@peculiar/x509"
import { createHash, createPrivateKey, webcrypto } from "node:crypto"

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

const rsa = {
  name: "RSASSA-PKCS1-v1_5",
  hash: "SHA-256",
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048
}

export interface Issued {
  /** The certificate, PEM. */
  readonly certPem: string
  /** The private key, unencrypted PKCS#8 PEM. */
  readonly keyPem: string
  /** DER of the certificate. */
  readonly der: Buffer
  /** SHA-1 thumbprint, upper-case hex (the form Service Fabric's IDENTITY_SERVER_THUMBPRINT uses). */
  readonly sha1Hex: string
  readonly sha256Hex: string
}

const toPem = (label: string, der: ArrayBuffer) =>
  `-----BEGIN ${label}-----\n${
    Buffer.from(der).toString("base64").match(/.{1,64}/g)!.join("\n")
  }\n-----END ${label}-----\n`

const keyPair = () => webcrypto.subtle.generateKey(rsa, true, ["sign", "verify"]) as Promise<CryptoKeyPair>

const finish = async (cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<Issued> => {
  const der = Buffer.from(cert.rawData)
  const keyPem = toPem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey))
  return {
    certPem: cert.toString("pem") + "\n",
    keyPem,
    der,
    sha1Hex: createHash("sha1").update(der).digest("hex").toUpperCase(),
    sha256Hex: createHash("sha256").update(der).digest("hex").toUpperCase()
  }
}

export interface CertificateAuthority extends Issued {
  /** Issues a leaf certificate; `hosts` become DNS / IP subject alternative names (for TLS servers). */
  readonly issue: (options: { readonly commonName: string; readonly hosts?: ReadonlyArray<string> }) => Promise<Issued>
}

const validity = () => {
  // certificates are valid from a day ago for ten years: independent of the test clock
  const notBefore = new Date(Math.floor(performance.timeOrigin) - 86_400_000)
  return { notBefore, notAfter: new Date(notBefore.getTime() + 10 * 365 * 86_400_000) }
}

/** A CA whose certificate clients can trust (`ca` TLS option, or NODE_EXTRA_CA_CERTS for child processes). */
export const makeCertificateAuthority = async (
  name = "effect-azure-identity test CA"
): Promise<CertificateAuthority> => {
  const keys = await keyPair()
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${name}`,
    keys,
    signingAlgorithm: rsa,
    ...validity(),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)
    ]
  })
  const ca = await finish(caCert, keys)
  let serial = 1
  const issue: CertificateAuthority["issue"] = async ({ commonName, hosts = [] }) => {
    const leafKeys = await keyPair()
    serial++
    const altNames = hosts.map((
      h
    ) => (/^[\d.]+$|:/.test(h) ? { type: "ip" as const, value: h } : { type: "dns" as const, value: h }))
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial.toString(16).padStart(2, "0"),
      subject: `CN=${commonName}`,
      issuer: caCert.subject,
      publicKey: leafKeys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: rsa,
      ...validity(),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames)] : [])
      ]
    })
    return finish(cert, leafKeys)
  }
  return { ...ca, issue }
}

/** A self-signed certificate (e.g. Service Fabric's endpoint, or an app registration's client certificate). */
export const makeSelfSigned = async (
  options: { readonly commonName: string; readonly hosts?: ReadonlyArray<string> }
) => {
  const keys = await keyPair()
  const altNames = (options.hosts ?? []).map((h) =>
    /^[\d.]+$|:/.test(h) ? { type: "ip" as const, value: h } : { type: "dns" as const, value: h }
  )
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "0a",
    name: `CN=${options.commonName}`,
    keys,
    signingAlgorithm: rsa,
    ...validity(),
    extensions: altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames)] : []
  })
  return finish(cert, keys)
}

/** The same key as PKCS#1 (`BEGIN RSA PRIVATE KEY`), optionally encrypted the legacy OpenSSL way. */
export const toPkcs1 = (keyPem: string, passphrase?: string): string =>
  createPrivateKey(keyPem).export({
    type: "pkcs1",
    format: "pem",
    ...(passphrase === undefined ? {} : { cipher: "aes-256-cbc", passphrase })
  }) as string

/** The same key as encrypted PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`). */
export const toEncryptedPkcs8 = (keyPem: string, passphrase: string): string =>
  createPrivateKey(keyPem).export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase }) as string

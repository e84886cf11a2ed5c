/**
 * The emulator's signing key, the tokens it issues, and verification of the JWTs clients send it (certificate
 * client assertions, federated assertions it minted, user tokens for on-behalf-of).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as jose from "jose"
import { createHash, X509Certificate } from "node:crypto"
import type { KeyObject } from "node:crypto"

/** The key every issued token is signed with (RS256), generated when the emulator starts. @internal */
export interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  readonly publicJwk: jose.JWK
}

/** @internal */
export const generateSigningKey: Effect.Effect<SigningKey> = Effect.promise(async () => {
  const { privateKey, publicKey } = await jose.generateKeyPair("RS256", { extractable: true })
  const publicJwk = await jose.exportJWK(publicKey)
  const kid = await jose.calculateJwkThumbprint(publicJwk)
  return { kid, privateKey, publicKey, publicJwk: { ...publicJwk, kid, use: "sig", alg: "RS256" } }
})

/** Signs claims as a JWT with the emulator's key; times in the claims are epoch seconds from the caller's Clock. @internal */
export const sign = (key: SigningKey, claims: jose.JWTPayload): Effect.Effect<string> =>
  Effect.promise(() =>
    new jose.SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "JWT", kid: key.kid }).sign(key.privateKey)
  )

/** A certificate registered for an app: its public key and both thumbprints (base64url, as in `x5t` headers). @internal */
export interface RegisteredCertificate {
  readonly publicKey: KeyObject
  readonly x5t: string
  readonly x5tS256: string
  readonly thumbprint: string
}

/** Parses a PEM certificate registered for an app (the first CERTIFICATE block). @internal */
export const registerCertificate = (pem: string): Either.Either<RegisteredCertificate, string> => {
  try {
    const cert = new X509Certificate(pem)
    return Either.right({
      publicKey: cert.publicKey,
      x5t: createHash("sha1").update(cert.raw).digest("base64url"),
      x5tS256: createHash("sha256").update(cert.raw).digest("base64url"),
      thumbprint: createHash("sha1").update(cert.raw).digest("hex").toUpperCase()
    })
  } catch {
    return Either.left("a registered certificate is not a PEM X.509 certificate")
  }
}

/** Why a presented JWT was refused, classified as Entra classifies it. @internal */
export type JwtProblem =
  | { readonly _tag: "Malformed"; readonly detail: string }
  | { readonly _tag: "BadSignature"; readonly detail: string }
  | { readonly _tag: "OutsideWindow"; readonly detail: string }
  | { readonly _tag: "WrongAudience"; readonly detail: string }

/** The protected header of a JWT, or why it is not one. @internal */
export const decodeHeader = (token: string): Either.Either<jose.ProtectedHeaderParameters, JwtProblem> => {
  try {
    return Either.right(jose.decodeProtectedHeader(token))
  } catch {
    return Either.left({ _tag: "Malformed", detail: "the value is not a JWT (three base64url parts)" })
  }
}

/** The payload of a JWT without verifying it (for messages only). @internal */
export const peekClaims = (token: string): jose.JWTPayload | undefined => {
  try {
    return jose.decodeJwt(token)
  } catch {
    return undefined
  }
}

const classify = (error: unknown): JwtProblem => {
  const code = (error as { code?: string }).code
  const claim = (error as { claim?: string }).claim
  const message = error instanceof Error ? error.message : "invalid"
  if (code === "ERR_JWT_EXPIRED") return { _tag: "OutsideWindow", detail: "the token has expired (exp)" }
  if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED") {
    if (claim === "nbf" || claim === "iat") {
      return { _tag: "OutsideWindow", detail: `the token is not yet valid (${claim})` }
    }
    if (claim === "aud") return { _tag: "WrongAudience", detail: "the audience (aud) is not the expected one" }
    return { _tag: "Malformed", detail: `claim ${claim ?? "?"} is invalid: ${message}` }
  }
  if (code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") {
    return { _tag: "BadSignature", detail: "the signature does not verify with the registered key" }
  }
  if (code === "ERR_JOSE_ALG_NOT_ALLOWED") {
    return { _tag: "BadSignature", detail: "the signing algorithm is not accepted (use PS256 or RS256)" }
  }
  return { _tag: "Malformed", detail: message }
}

/**
 * Verifies a JWT's signature, audience and time window at `nowMillis` (from the emulator's Clock). `exp` is
 * required; a 5-minute skew is tolerated, as Entra does.
 *
 * @internal
 */
export const verify = (
  token: string,
  key: KeyObject | CryptoKey,
  options: {
    readonly nowMillis: number
    /** Absent: any audience. */
    readonly audience?: string | ReadonlyArray<string> | undefined
    readonly algorithms: ReadonlyArray<string>
  }
): Effect.Effect<jose.JWTPayload, JwtProblem> =>
  Effect.tryPromise({
    try: () =>
      jose.jwtVerify(token, key, {
        algorithms: [...options.algorithms],
        ...(options.audience === undefined
          ? {}
          : { audience: typeof options.audience === "string" ? options.audience : [...options.audience] }),
        currentDate: new Date(options.nowMillis),
        clockTolerance: 300,
        requiredClaims: ["exp"]
      }).then((r) => r.payload),
    catch: classify
  })

/**
 * Client assertions: the JWT a confidential client signs with its certificate's key to authenticate to the token
 * endpoint (RFC 7523 `private_key_jwt`), and the form fields that carry it.
 *
 * ## Reusable entry point (stable: other credentials import it)
 *
 * ```ts
 * // once, when the credential is built (never fails; problems surface when an assertion is needed):
 * const certificate: PreparedCertificate = yield* prepareCertificate("OnBehalfOfCredential", {
 *   certificatePath,          // or certificate: PEM text (string or Redacted)
 *   certificatePassword,      // Redacted<string>, optional
 *   sendCertificateChain,     // optional, default false
 *   signingAlgorithm          // optional, "PS256" (default) or "RS256"
 * })
 * // for every network token request (e.g. inside the `form` effect given to `requestToken`):
 * const fields: AssertionFields = yield* certificateAssertionFields(certificate, clientId, tokenEndpoint)
 * // fields = { client_assertion: Redacted<JWT>, client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" }
 * ```
 *
 * - `prepareCertificate(credential, options): Effect<PreparedCertificate>` uses `FileSystem` when it is in the
 *   context (optional: without it, only in-memory PEM works; a path then fails with `CredentialUnavailableError`).
 *   A certificate file is read again for every assertion (parsed again only when its content changed), so a renewed
 *   certificate is picked up on the next network request.
 * - `certificateAssertionFields(prepared, clientId, tokenEndpoint): Effect<AssertionFields, CredentialUnavailableError>`
 *   signs a fresh JWT each time (time from `Clock`, `jti` from `Random`). `tokenEndpoint` must be the exact URL the
 *   request goes to (`tokenEndpoint(authorityHost, tenantId)` from `aad.ts`). Bad certificates, keys and passwords
 *   are `CredentialUnavailableError`s whose messages never contain key material.
 *
 * The JWT: header `alg` PS256 + `x5t#S256` (default) or RS256 + `x5t`, `typ` JWT, `x5c` (the PEM's certificates,
 * leaf first) when `sendCertificateChain`; claims `aud` = token endpoint, `iss` = `sub` = client id, `jti` = a fresh
 * UUID, `nbf` = `iat` = now, `exp` = now + 600 s.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { createHash } from "node:crypto"
import { CredentialUnavailableError } from "../IdentityError.js"
import * as BoundedFile from "./boundedFile.js"
import type { ParsedCertificate } from "./certificate.js"
import { parse } from "./certificate.js"
import { randomUuid } from "./http.js"

/** @internal */
export const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/** Lifetime of a signed assertion: 10 minutes (what Entra documents; a fresh one is signed per request). @internal */
export const lifetimeSeconds = 600

/** @internal */
export type SigningAlgorithm = "PS256" | "RS256"

/** The client-authentication form fields of an assertion. @internal */
export type AssertionFields = {
  readonly client_assertion: Redacted.Redacted<string>
  readonly client_assertion_type: typeof assertionType
}

/** An assertion from anywhere (a callback, a federated token file) as form fields. @internal */
export const assertionFields = (assertion: string | Redacted.Redacted<string>): AssertionFields => ({
  client_assertion: Redacted.isRedacted(assertion) ? assertion : Redacted.make(assertion),
  client_assertion_type: assertionType
})

/**
 * Reads a federated token file (AKS workload identity, pipelines) for one request: the file is read again every
 * time, so a rotated token is picked up. Problems are `CredentialUnavailableError`s of `credential`.
 *
 * @internal
 */
export const readFederatedToken = (
  credential: string,
  fs: FileSystem.FileSystem,
  path: string
): Effect.Effect<Redacted.Redacted<string>, CredentialUnavailableError> =>
  BoundedFile.readText(fs, path, BoundedFile.limits.tokenFile).pipe(
    Effect.mapError((error) =>
      new CredentialUnavailableError({
        credential,
        reason: readFailure(
          "federated token file",
          path,
          error,
          "check tokenFilePath / AZURE_FEDERATED_TOKEN_FILE and that the service account token is projected into " +
            "the pod"
        )
      })
    ),
    Effect.flatMap((text) => {
      const token = text.trim()
      return token === ""
        ? Effect.fail(
          new CredentialUnavailableError({
            credential,
            reason: `the federated token file ${path} is empty: no content on the file, check that the token is ` +
              "projected into the pod (or written by the pipeline) before requesting a token"
          })
        )
        : Effect.succeed(Redacted.make(token))
    })
  )

/** @internal */
export interface SignOptions {
  readonly clientId: string
  /** The exact token endpoint URL the assertion is sent to: its `aud`. */
  readonly tokenEndpoint: string
  readonly algorithm: SigningAlgorithm
  readonly sendCertificateChain: boolean
}

/**
 * Signs one client assertion with `jose`. Time from `Clock`, `jti` from `Random`. Fails with a description (never
 * key material) when the key cannot sign.
 *
 * @internal
 */
export const sign = (certificate: ParsedCertificate, options: SignOptions): Effect.Effect<string, string> =>
  Effect.gen(function*() {
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const jti = yield* randomUuid
    const header = {
      alg: options.algorithm,
      typ: "JWT",
      ...(options.algorithm === "PS256" ? { "x5t#S256": certificate.x5tS256 } : { x5t: certificate.x5t }),
      ...(options.sendCertificateChain ? { x5c: [...certificate.x5c] } : {})
    }
    const payload = {
      aud: options.tokenEndpoint,
      iss: options.clientId,
      sub: options.clientId,
      jti,
      nbf: now,
      iat: now,
      exp: now + lifetimeSeconds
    }
    return yield* Effect.tryPromise({
      // `jose` is loaded on the first signature, not when the library is imported (most apps never sign)
      try: () =>
        import("jose").then(({ SignJWT }) =>
          new SignJWT(payload).setProtectedHeader(header).sign(certificate.privateKey)
        ),
      catch: (error) =>
        error instanceof Error && /modulusLength/.test(error.message)
          ? `the RSA key is too short to sign ${options.algorithm}: use a key of 2048 bits or more`
          : `the private key could not sign the ${options.algorithm} client assertion: check that it is a valid RSA key`
    })
  })

/** Certificate settings as credentials take them. @internal */
export interface CertificateOptions {
  /** Path of a PEM file holding the certificate(s) and the private key. */
  readonly certificatePath?: string | undefined
  /** The PEM text itself (certificate(s) and private key); give this or `certificatePath`, not both. */
  readonly certificate?: string | Redacted.Redacted<string> | undefined
  /** Password of an encrypted private key. */
  readonly certificatePassword?: Redacted.Redacted<string> | undefined
  /** Send the certificate chain (`x5c`), needed for Subject Name / Issuer authentication. Default false. */
  readonly sendCertificateChain?: boolean | undefined
  /** `PS256` with `x5t#S256` (default, what Entra documents now) or `RS256` with `x5t` (older setups, ADFS). */
  readonly signingAlgorithm?: SigningAlgorithm | undefined
}

/** Certificate options checked and bound to a `FileSystem`: what `certificateAssertionFields` signs with. @internal */
export interface PreparedCertificate {
  readonly credential: string
  /** Reads (when from a file) and parses the certificate; cached while the content does not change. */
  readonly load: Effect.Effect<ParsedCertificate, CredentialUnavailableError>
  readonly algorithm: SigningAlgorithm
  readonly sendCertificateChain: boolean
}

const describeReadError = (error: unknown): string => {
  if (error instanceof BoundedFile.BoundedFileError) return error.reason
  const e = error as { readonly _tag?: string; readonly reason?: string }
  if (e._tag === "SystemError" && e.reason === "NotFound") return "it does not exist"
  if (e._tag === "SystemError" && e.reason === "PermissionDenied") return "permission denied"
  if (e._tag === "SystemError" && typeof e.reason === "string") return e.reason
  return "invalid path"
}

/** @internal */
export const readFailure = (what: string, path: string, error: unknown, fix: string): string =>
  `the ${what} ${path} could not be read (${describeReadError(error)}): ${fix}`

/**
 * Checks certificate options and binds them to the `FileSystem` in the context (if any). Never fails: a problem is
 * kept and reported by every `load`, so a credential layer still builds and `getToken` fails with
 * `CredentialUnavailableError`.
 *
 * @internal
 */
export const prepareCertificate = (
  credential: string,
  options: CertificateOptions
): Effect.Effect<PreparedCertificate> =>
  Effect.gen(function*() {
    const fail = (reason: string) => Effect.fail(new CredentialUnavailableError({ credential, reason }))
    const algorithm = options.signingAlgorithm ?? "PS256"
    const sendCertificateChain = options.sendCertificateChain === true
    const base = { credential, algorithm, sendCertificateChain }
    const path = options.certificatePath?.trim() ?? ""
    const inline = options.certificate === undefined
      ? ""
      : Redacted.isRedacted(options.certificate)
      ? Redacted.value(options.certificate)
      : options.certificate
    const password = options.certificatePassword !== undefined && Redacted.value(options.certificatePassword) !== ""
      ? options.certificatePassword
      : undefined
    if (path !== "" && inline.trim() !== "") {
      return { ...base, load: fail("both certificatePath and certificate were given: give only one") }
    }
    if (inline.trim() !== "") {
      const parsed = parse(inline, password)
      return {
        ...base,
        load: Either.isRight(parsed)
          ? Effect.succeed(parsed.right)
          : fail(`the certificate is invalid: ${parsed.left.message}`)
      }
    }
    if (path === "") {
      return {
        ...base,
        load: fail(
          "no certificate was given: set certificatePath (or AZURE_CLIENT_CERTIFICATE_PATH) to a PEM file holding " +
            "the certificate and its private key"
        )
      }
    }
    const fs = yield* Effect.serviceOption(FileSystem.FileSystem)
    if (Option.isNone(fs)) {
      return {
        ...base,
        load: fail(`no FileSystem service to read ${path} with: provide one (e.g. the node layer of this library)`)
      }
    }
    const last = yield* Ref.make<Option.Option<{ readonly digest: string; readonly parsed: ParsedCertificate }>>(
      Option.none()
    )
    const load = Effect.gen(function*() {
      const text = yield* BoundedFile.readText(fs.value, path, BoundedFile.limits.pem).pipe(
        Effect.mapError((error) =>
          new CredentialUnavailableError({
            credential,
            reason: readFailure(
              "certificate file",
              path,
              error,
              "check certificatePath / AZURE_CLIENT_CERTIFICATE_PATH and the file's permissions"
            )
          })
        )
      )
      const digest = createHash("sha256").update(text).digest("hex")
      const cached = yield* Ref.get(last)
      if (Option.isSome(cached) && cached.value.digest === digest) return cached.value.parsed
      const parsed = parse(text, password)
      if (Either.isLeft(parsed)) return yield* fail(`the certificate file ${path} is invalid: ${parsed.left.message}`)
      yield* Ref.set(last, Option.some({ digest, parsed: parsed.right }))
      return parsed.right
    })
    return { ...base, load }
  })

/**
 * The client-authentication form fields for one network token request: a freshly signed assertion.
 *
 * @internal
 */
export const certificateAssertionFields = (
  prepared: PreparedCertificate,
  clientId: string,
  tokenEndpoint: string
): Effect.Effect<AssertionFields, CredentialUnavailableError> =>
  Effect.gen(function*() {
    const certificate = yield* prepared.load
    const jwt = yield* sign(certificate, {
      clientId,
      tokenEndpoint,
      algorithm: prepared.algorithm,
      sendCertificateChain: prepared.sendCertificateChain
    }).pipe(
      Effect.mapError((reason) => new CredentialUnavailableError({ credential: prepared.credential, reason }))
    )
    yield* Effect.logDebug("signed a client assertion").pipe(
      Effect.annotateLogs({ thumbprint: certificate.thumbprint, algorithm: prepared.algorithm })
    )
    return assertionFields(Redacted.make(jwt))
  })

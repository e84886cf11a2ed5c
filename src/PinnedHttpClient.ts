/**
 * An `HttpClient` that trusts exactly one server certificate, named by its thumbprint, instead of the certificate
 * authorities: how `ManagedIdentityCredential` talks to Service Fabric's managed identity endpoint, which serves a
 * self-signed certificate whose thumbprint is in `IDENTITY_SERVER_THUMBPRINT`. Verification is never switched off:
 * a server presenting any other certificate is refused before a byte of the request (with its secret header) is sent.
 *
 * The library itself stays platform-agnostic; `effect-azure-identity/node` provides the Node implementation
 * (`layer` includes it). Without a `PinnedHttpClient` in the context, the Service Fabric source is unavailable and
 * says so.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import { InvalidArgumentError } from "./IdentityError.js"

/**
 * A certificate thumbprint: the hash of its DER encoding, SHA-1 or SHA-256, in upper-case hex.
 *
 * @since 0.1.0
 * @category models
 */
export interface Thumbprint {
  /** SHA-1 (40 hex digits, Service Fabric's form) or SHA-256 (64 hex digits) of the certificate's DER. */
  readonly algorithm: "sha1" | "sha256"
  /** Upper-case hex, no separators. */
  readonly hex: string
}

/**
 * What a {@link PinnedHttpClient} does: make an `HttpClient` that trusts only the certificate with a given thumbprint.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * A client whose `https:` connections succeed only when the server's certificate has this thumbprint (whoever
   * signed it); anything else — another certificate, or plain `http:` — fails the request with a transport error
   * whose cause has `code` {@link thumbprintMismatchCode}. Connections are closed with the scope.
   */
  readonly make: (thumbprint: Thumbprint) => Effect.Effect<HttpClient.HttpClient, never, Scope.Scope>
}

/**
 * The service that makes certificate-pinned clients; `effect-azure-identity/node` provides it.
 * `ManagedIdentityCredential` looks for it to reach Service Fabric's endpoint.
 *
 * @since 0.1.0
 * @category tags
 */
export class PinnedHttpClient extends Context.Tag("effect-azure-identity/PinnedHttpClient")<
  PinnedHttpClient,
  Service
>() {}

/**
 * The `code` of the error a connection fails with when the server's certificate does not match the pin.
 *
 * @since 0.1.0
 * @category constants
 */
export const thumbprintMismatchCode = "ERR_CERT_THUMBPRINT_MISMATCH"

/**
 * Reads a thumbprint as people write it: hex digits, any case, optionally separated by `:`, spaces or `-`. Fails
 * with `InvalidArgumentError` (`argument` defaults to `thumbprint`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseThumbprint = (
  input: string,
  argument = "thumbprint"
): Either.Either<Thumbprint, InvalidArgumentError> => {
  const fail = (reason: string) => Either.left(new InvalidArgumentError({ argument, reason }))
  const hex = input.replace(/[\s:-]/g, "").toUpperCase()
  if (!/^[0-9A-F]+$/.test(hex)) return fail("the thumbprint is not hexadecimal")
  if (hex.length === 40) return Either.right({ algorithm: "sha1", hex })
  if (hex.length === 64) return Either.right({ algorithm: "sha256", hex })
  return fail(`the thumbprint has ${hex.length} hex digits: expected 40 (SHA-1) or 64 (SHA-256)`)
}

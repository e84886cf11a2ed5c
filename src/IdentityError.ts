/**
 * The typed errors every credential fails with.
 *
 * - `CredentialUnavailableError`: the credential cannot even try (not configured, endpoint or tool absent, no
 *   network answer). A chain moves on to its next link.
 * - `ClientAuthenticationError`: the authority answered and said no, or answered with something unusable. A chain
 *   stops here: a wrong secret must never silently fall through to another identity.
 * - `AuthenticationRequiredError`: a user has to interact (sign in again). A chain moves on.
 * - `ChainedAuthenticationError`: every link of a chain failed; holds each link's error in order.
 *
 * No error ever holds a secret, a token or a request body: messages are built from names, URLs without query
 * strings, status codes and the fields Entra returns in its error body.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category errors
 */
export class CredentialUnavailableError extends Schema.TaggedError<CredentialUnavailableError>(
  "effect-azure-identity/CredentialUnavailableError"
)("CredentialUnavailableError", {
  /** The credential that could not try, e.g. `ClientSecretCredential`. */
  credential: Schema.String,
  /** Why, and what to do about it. */
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.credential} is unavailable: ${this.reason}`
  }
}

/**
 * A value given to the library (an option, an environment variable, a scope or tenant passed to `getToken`) that
 * cannot be used. The message says what is wrong and what to give instead; it never repeats a secret.
 *
 * Public validation functions (`AuthorityHost.normalize`, `AuthorityHost.validateTenantId`, …) fail with it. A
 * credential whose set-up or request is refused this way fails its `getToken` with `CredentialUnavailableError`
 * carrying the same message.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgumentError extends Schema.TaggedError<InvalidArgumentError>(
  "effect-azure-identity/InvalidArgumentError"
)("InvalidArgumentError", {
  /** The option or environment variable at fault, e.g. `tenantId`, `scopes`, `AZURE_AUTHORITY_HOST`. */
  argument: Schema.String,
  /** What is wrong, and what to do about it. */
  reason: Schema.String
}) {
  override get message(): string {
    return this.reason
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export class ClientAuthenticationError extends Schema.TaggedError<ClientAuthenticationError>(
  "effect-azure-identity/ClientAuthenticationError"
)("ClientAuthenticationError", {
  credential: Schema.String,
  /** What went wrong, and what to do about it. */
  reason: Schema.String,
  /** HTTP status of the answer, when there was one. */
  status: Schema.optional(Schema.Number),
  /** OAuth error code, e.g. `invalid_client`. */
  error: Schema.optional(Schema.String),
  errorDescription: Schema.optional(Schema.String),
  errorCodes: Schema.optional(Schema.Array(Schema.Number)),
  correlationId: Schema.optional(Schema.String),
  traceId: Schema.optional(Schema.String),
  timestamp: Schema.optional(Schema.String),
  /** A Conditional Access claims challenge returned by Entra, to be passed back as `claims` after interaction. */
  claims: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `${this.credential} authentication failed: ${this.reason}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationRequiredError extends Schema.TaggedError<AuthenticationRequiredError>(
  "effect-azure-identity/AuthenticationRequiredError"
)("AuthenticationRequiredError", {
  credential: Schema.String,
  reason: Schema.String,
  scopes: Schema.Array(Schema.String),
  claims: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `${this.credential} needs user interaction: ${this.reason}`
  }
}

/**
 * The error of one link of a chain.
 *
 * @since 0.1.0
 * @category errors
 */
export const LinkError = Schema.Union(
  CredentialUnavailableError,
  ClientAuthenticationError,
  AuthenticationRequiredError
)

/**
 * @since 0.1.0
 * @category errors
 */
export type LinkError = CredentialUnavailableError | ClientAuthenticationError | AuthenticationRequiredError

/**
 * @since 0.1.0
 * @category errors
 */
export class ChainedAuthenticationError extends Schema.TaggedError<ChainedAuthenticationError>(
  "effect-azure-identity/ChainedAuthenticationError"
)("ChainedAuthenticationError", {
  credential: Schema.String,
  /** Each link's error, in chain order. */
  errors: Schema.Array(LinkError)
}) {
  override get message(): string {
    const lines = this.errors.map((e, i) =>
      `  ${i + 1}. ${e.credential} [${
        e._tag === "CredentialUnavailableError"
          ? "unavailable"
          : e._tag === "AuthenticationRequiredError"
          ? "needs sign-in"
          : "failed"
      }]: ${e.reason}`
    )
    const stopped = this.errors.find((e) => e._tag === "ClientAuthenticationError")
    const head = stopped
      ? `${this.credential} stopped at ${stopped.credential}, which was configured but failed to authenticate ` +
        `(fix that credential, or remove it from the chain):`
      : `${this.credential} found no credential that could get a token. Configure one of:`
    return [head, ...lines].join("\n")
  }
}

/**
 * Any error a credential's `getToken` may fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type IdentityError = LinkError | ChainedAuthenticationError

/**
 * @since 0.1.0
 * @category errors
 */
export const IdentityError = Schema.Union(
  CredentialUnavailableError,
  ClientAuthenticationError,
  AuthenticationRequiredError,
  ChainedAuthenticationError
)

/**
 * True for errors after which a chain moves on to its next link.
 *
 * @since 0.1.0
 * @category guards
 */
export const isChainContinuable = (error: IdentityError): boolean =>
  error._tag === "CredentialUnavailableError" || error._tag === "AuthenticationRequiredError"

/**
 * @since 0.1.0
 * @category guards
 */
export const isIdentityError = (u: unknown): u is IdentityError =>
  Predicate.isTagged(u, "CredentialUnavailableError") || Predicate.isTagged(u, "ClientAuthenticationError") ||
  Predicate.isTagged(u, "AuthenticationRequiredError") || Predicate.isTagged(u, "ChainedAuthenticationError")

/**
 * A `TokenCache` backend that refuses to work (misconfigured). Credentials turn it into a
 * `CredentialUnavailableError` carrying this reason, before any network request. Read and write failures of a working
 * backend are not errors: they are logged and count as a miss. Also exported as `TokenCache.TokenCacheError`.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenCacheError extends Schema.TaggedError<TokenCacheError>("effect-azure-identity/TokenCacheError")(
  "TokenCacheError",
  { reason: Schema.String }
) {
  override get message(): string {
    return `the persistent token cache refuses to work: ${this.reason}`
  }
}

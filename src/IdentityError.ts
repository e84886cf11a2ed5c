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
 * A machine-readable reason, beside the human-readable `reason` text, for programs that branch on why a credential
 * failed (alerting, retry, a "sign in again" prompt). The text may change between versions; these codes do not.
 *
 * - `not-configured`: a setting the credential needs is absent (environment variables, options, a file).
 * - `invalid-configuration`: a setting is present but unusable (a malformed certificate, a bad tenant id).
 * - `endpoint-unreachable`: no answer from an endpoint (token endpoint, IMDS, a managed-identity source).
 * - `timeout`: an endpoint or a tool did not answer in time.
 * - `tool-missing`: a developer tool (`az`, `azd`, `pwsh`) is not installed or not on `PATH`.
 * - `not-signed-in`: a developer tool or a cache has no signed-in account (`az login` …).
 * - `tool-failed`: a developer tool ran and failed for another reason.
 * - `rejected-by-authority`: the authority answered with an OAuth error (wrong secret, unknown client, AADSTS…).
 * - `invalid-response`: the authority answered with something that is not a token nor an OAuth error.
 * - `interaction-required`: a user must sign in again (`AuthenticationRequiredError`).
 * - `unknown`: not classified (yet).
 *
 * @since 0.1.0
 * @category models
 */
export const ReasonCode = Schema.Literal(
  "not-configured",
  "invalid-configuration",
  "endpoint-unreachable",
  "timeout",
  "tool-missing",
  "not-signed-in",
  "tool-failed",
  "rejected-by-authority",
  "invalid-response",
  "interaction-required",
  "unknown"
)

/**
 * One of the machine-readable reasons of {@link ReasonCode}, as an error's `code` holds it.
 *
 * @since 0.1.0
 * @category models
 */
export type ReasonCode = typeof ReasonCode.Type

/**
 * The credential cannot even try: it is not configured, its endpoint or tool is absent, or nothing answered. `reason`
 * says what to do; a chain moves on to its next link.
 *
 * @since 0.1.0
 * @category errors
 */
export class CredentialUnavailableError extends Schema.TaggedError<CredentialUnavailableError>(
  "effect-azure-identity/CredentialUnavailableError"
)("CredentialUnavailableError", {
  /** The credential that could not try, e.g. `ClientSecretCredential`. */
  credential: Schema.String,
  /** Why, and what to do about it. */
  reason: Schema.String,
  /** Why, as a machine-readable {@link ReasonCode}; `"unknown"` when the construction site did not say. */
  code: Schema.optionalWith(ReasonCode, { default: () => "unknown" })
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
 * The authority answered and refused (an OAuth error such as `invalid_client`, with its codes and correlation id) or
 * answered with something unusable. A chain stops here: a configured credential that fails must not fall through to
 * another identity.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientAuthenticationError extends Schema.TaggedError<ClientAuthenticationError>(
  "effect-azure-identity/ClientAuthenticationError"
)("ClientAuthenticationError", {
  credential: Schema.String,
  /** What went wrong, and what to do about it. */
  reason: Schema.String,
  /** What went wrong, as a machine-readable {@link ReasonCode}; `"unknown"` when the construction site did not say. */
  code: Schema.optionalWith(ReasonCode, { default: () => "unknown" }),
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
 * A user has to sign in (again): the credential cannot get a token silently, e.g. `disableAutomaticAuthentication` is
 * set or the refresh token was revoked. Call `UserCredential.authenticate` with `scopes` (and `claims`, when given); a
 * chain moves on to its next link.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationRequiredError extends Schema.TaggedError<AuthenticationRequiredError>(
  "effect-azure-identity/AuthenticationRequiredError"
)("AuthenticationRequiredError", {
  credential: Schema.String,
  reason: Schema.String,
  scopes: Schema.Array(Schema.String),
  claims: Schema.optional(Schema.String),
  /** Always `"interaction-required"` unless the construction site says otherwise. */
  code: Schema.optionalWith(ReasonCode, { default: () => "interaction-required" })
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
 * The error of one link of a chain: unavailable, refused, or needing a user sign-in.
 *
 * @since 0.1.0
 * @category errors
 */
export type LinkError = CredentialUnavailableError | ClientAuthenticationError | AuthenticationRequiredError

/**
 * Every link of a chain (`ChainedTokenCredential`, `DefaultAzureCredential`) failed: `errors` holds each link's error
 * in chain order, and the message lists them with what to fix.
 *
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
 * The schema of the `IdentityError` type: decodes or encodes any of the four errors, e.g. to send one across a process
 * boundary.
 *
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
 * Whether a value is one of the four errors of this module, checked by its `_tag`.
 *
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

/**
 * The one capability every credential provides.
 *
 * Provide a credential layer once at the edge of your program and ask for tokens anywhere below it:
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { ClientSecretCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const program = TokenCredential.getToken("https://vault.azure.net/.default")
 *
 * program.pipe(
 *   Effect.provide(ClientSecretCredential.layer({
 *     tenantId: "…", clientId: "…", clientSecret: Redacted.make("…")
 *   })),
 *   Effect.provide(IdentityNode.layer)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { AccessToken } from "./AccessToken.js"
import type { IdentityError } from "./IdentityError.js"

/**
 * The options of one `getToken` call, all optional: another tenant, a claims challenge, Continuous Access Evaluation.
 *
 * @since 0.1.0
 * @category models
 */
export interface GetTokenOptions {
  /** Ask for a token in another tenant (the credential must allow it: see `additionallyAllowedTenants`). */
  readonly tenantId?: string | undefined
  /** A claims challenge (JSON) from a resource's 401: bypasses the cache and is forwarded to the authority. */
  readonly claims?: string | undefined
  /** Declare Continuous Access Evaluation support (client capability `CP1`). */
  readonly enableCae?: boolean | undefined
}

/**
 * What every credential is: a name and `getToken`, which returns a token for the scopes or fails with an
 * `IdentityError`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The credential's name, e.g. `ClientSecretCredential`, used in chain errors and spans. */
  readonly name: string
  readonly getToken: (
    scopes: string | ReadonlyArray<string>,
    options?: GetTokenOptions
  ) => Effect.Effect<AccessToken, IdentityError>
}

/**
 * What a finished run of a developer tool (`az`, `azd`, PowerShell) printed, as the `interpret` functions of
 * `AzureCliCredential`, `AzureDeveloperCliCredential` and `AzurePowerShellCredential` take it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolOutput {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * The credential of the context: every credential module's `layer` provides it, and {@link getToken}, `BearerToken` and
 * the Azure SDK bridge use it.
 *
 * @since 0.1.0
 * @category tags
 */
export class TokenCredential extends Context.Tag("effect-azure-identity/TokenCredential")<TokenCredential, Service>() {}

/**
 * Gets a token from the `TokenCredential` in the context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const getToken: (
  scopes: string | ReadonlyArray<string>,
  options?: GetTokenOptions
) => Effect.Effect<AccessToken, IdentityError, TokenCredential> = Effect.serviceFunctionEffect(
  TokenCredential,
  (service) => service.getToken
)

/**
 * Builds a service from a name and a `getToken` function.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: string, getToken: Service["getToken"]): Service => ({ name, getToken })

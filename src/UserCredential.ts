/**
 * What the user credentials (`InteractiveBrowserCredential`, `DeviceCodeCredential`, `UsernamePasswordCredential`)
 * offer besides `TokenCredential`: an explicit sign-in that returns an `AuthenticationRecord`.
 *
 * Their layers provide both tags. The usual pattern, as in `@azure/identity` and `azure-identity`:
 *
 * 1. the first run calls `authenticate(scopes)` (the user signs in) and saves the record (it holds no secret);
 * 2. later runs pass the record as `authenticationRecord`, with `disableAutomaticAuthentication: true` and a
 *    persistent `TokenCache`: tokens come silently from the account's refresh token (kept encrypted in the cache),
 *    and when that is no longer possible `getToken` fails with `AuthenticationRequiredError` instead of prompting.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AuthenticationRecord, DeviceCodeCredential, UserCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const signIn = UserCredential.authenticate("https://graph.microsoft.com/User.Read").pipe(
 *   Effect.map(AuthenticationRecord.serialize),
 *   Effect.provide(DeviceCodeCredential.layer().pipe(Layer.provide(IdentityNode.layer)))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { AuthenticationRecord } from "./AuthenticationRecord.js"
import type { IdentityError } from "./IdentityError.js"
import type * as TokenCredential from "./TokenCredential.js"

/**
 * The options of `authenticate`, both optional: another tenant to sign in to, and a claims challenge to satisfy.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthenticateOptions {
  /** Sign in to this tenant instead of the credential's (it must be allowed, as for `getToken`). */
  readonly tenantId?: string | undefined
  /** A claims challenge to satisfy during the sign-in. */
  readonly claims?: string | undefined
}

/**
 * What a user credential offers besides `getToken`: `authenticate` (sign in now) and `record` (the account signed in).
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The credential's name, e.g. `InteractiveBrowserCredential`. */
  readonly name: string
  /**
   * Signs the user in now (always interactively: the browser, the device code prompt, or the password grant), even
   * when `disableAutomaticAuthentication` is set, and returns the record of the account. The tokens obtained are
   * kept: a `getToken` for the same scopes right after is served from the cache.
   */
  readonly authenticate: (
    scopes: string | ReadonlyArray<string>,
    options?: AuthenticateOptions
  ) => Effect.Effect<AuthenticationRecord, IdentityError>
  /** The record of the account signed in most recently (or the one the credential was given), if any. */
  readonly record: Effect.Effect<Option.Option<AuthenticationRecord>>
}

/**
 * What a user credential's `makeUser` builds: its two faces, sharing one cache and one account.
 *
 * @since 0.1.0
 * @category models
 */
export interface Services {
  readonly credential: TokenCredential.Service
  readonly user: Service
}

/**
 * The user credential of the context: the `layer` of `InteractiveBrowserCredential`, `DeviceCodeCredential` and
 * `UsernamePasswordCredential` provides it beside `TokenCredential`.
 *
 * @since 0.1.0
 * @category tags
 */
export class UserCredential extends Context.Tag("effect-azure-identity/UserCredential")<UserCredential, Service>() {}

/**
 * Signs the user in with the `UserCredential` in the context and returns the record of the account.
 *
 * @since 0.1.0
 * @category accessors
 */
export const authenticate: (
  scopes: string | ReadonlyArray<string>,
  options?: AuthenticateOptions
) => Effect.Effect<AuthenticationRecord, IdentityError, UserCredential> = Effect.serviceFunctionEffect(
  UserCredential,
  (service) => service.authenticate
)

/**
 * The record of the account the `UserCredential` in the context signed in most recently, if any.
 *
 * @since 0.1.0
 * @category accessors
 */
export const record: Effect.Effect<Option.Option<AuthenticationRecord>, never, UserCredential> = Effect.flatMap(
  UserCredential,
  (service) => service.record
)

/**
 * What the user credentials (`DeviceCodeCredential`, `InteractiveBrowserCredential`, `AuthorizationCodeCredential`,
 * `UsernamePasswordCredential`) need from `userTokens.ts` at import: its layer and a front for its constructors that
 * loads it with `import()` when a credential is built, so that importing the library does not parse the user token
 * flows (docs/performance.md, "Import cost").
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as TokenCredential from "../TokenCredential.js"
import * as UserCredential from "../UserCredential.js"
import { unavailable, unavailableError } from "./confidentialClient.js"
import { lazyModule } from "./lazy.js"
import type * as UserTokens from "./userTokens.js"

export type { GrantError, GrantRequest, InitialGrant, UserContext, UserServices } from "./userTokens.js"

const userTokens = lazyModule(() => import("./userTokens.js"))

/** `userTokens.make`, loaded on first use. @internal */
export const make = (...args: Parameters<typeof UserTokens.make>): ReturnType<typeof UserTokens.make> =>
  Effect.flatMap(userTokens, (impl) => impl.make(...args))

/** `userTokens.makeUser`, loaded on first use. @internal */
export const makeUser = (...args: Parameters<typeof UserTokens.makeUser>): ReturnType<typeof UserTokens.makeUser> =>
  Effect.flatMap(userTokens, (impl) => impl.makeUser(...args))

/** A user credential that cannot try: both faces fail with `CredentialUnavailableError`. @internal */
export const unavailableUser = (credential: string, reason: string): UserTokens.UserServices => {
  const service = unavailable(credential, reason)
  return {
    credential: service,
    user: {
      name: credential,
      authenticate: () => Effect.fail(unavailableError(credential, reason)),
      record: Effect.succeed(Option.none())
    }
  }
}

/** The layer of a user credential: both tags from one build (one cache, one account). @internal */
export const layer = <E, R>(
  make: Effect.Effect<UserTokens.UserServices, E, R>
): Layer.Layer<TokenCredential.TokenCredential | UserCredential.UserCredential, E, Exclude<R, Scope.Scope>> =>
  Layer.scopedContext(
    Effect.map(make, (services) =>
      Context.make(TokenCredential.TokenCredential, services.credential).pipe(
        Context.add(UserCredential.UserCredential, services.user)
      ))
  )

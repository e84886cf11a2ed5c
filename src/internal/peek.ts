/**
 * A synchronous look into a credential's token cache, for callers that must not start a fiber for a cached token
 * (the Azure SDK adapter). Kept off the public `TokenCredential.Service` interface: a credential registers its peek
 * here, next to the service object it built.
 *
 * @internal
 */
import type { AccessToken } from "../AccessToken.js"
import type * as TokenCredential from "../TokenCredential.js"

/**
 * The token `getToken(scopes, options)` would return from memory at `nowMillis`, if it needs no refresh and no
 * request; else `undefined` (then the caller runs `getToken`). Never starts a request, never throws, never blocks.
 * Never answers for a claims challenge.
 *
 * @internal
 */
export type Peek = (
  scopes: string | ReadonlyArray<string>,
  options: TokenCredential.GetTokenOptions | undefined,
  nowMillis: number
) => AccessToken | undefined

const peeks = new WeakMap<TokenCredential.Service, Peek>()

/** Registers the peek of a service; returns the service. @internal */
export const register = (service: TokenCredential.Service, peek: Peek): TokenCredential.Service => {
  peeks.set(service, peek)
  return service
}

/** The peek of a service, if it has one. @internal */
export const of = (service: TokenCredential.Service): Peek | undefined => peeks.get(service)

/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as AccessToken from "./AccessToken.js"

/**
 * @since 0.1.0
 */
export * as AuthorityHost from "./AuthorityHost.js"

/**
 * @since 0.1.0
 */
export * as ClientSecretCredential from "./ClientSecretCredential.js"

/**
 * @since 0.1.0
 */
export * as IdentityError from "./IdentityError.js"

/**
 * @since 0.1.0
 */
export * as TokenCache from "./TokenCache.js"

/**
 * @since 0.1.0
 */
export * as TokenCredential from "./TokenCredential.js"

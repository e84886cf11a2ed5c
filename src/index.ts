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
export * as AuthenticationRecord from "./AuthenticationRecord.js"

/**
 * @since 0.1.0
 */
export * as AuthorityHost from "./AuthorityHost.js"

/**
 * @since 0.1.0
 */
export * as AuthorizationCodeCredential from "./AuthorizationCodeCredential.js"

/**
 * @since 0.1.0
 */
export * as AzureCliCredential from "./AzureCliCredential.js"

/**
 * @since 0.1.0
 */
export * as AzureDeveloperCliCredential from "./AzureDeveloperCliCredential.js"

/**
 * @since 0.1.0
 */
export * as AzurePipelinesCredential from "./AzurePipelinesCredential.js"

/**
 * @since 0.1.0
 */
export * as AzurePowerShellCredential from "./AzurePowerShellCredential.js"

/**
 * @since 0.1.0
 */
export * as AzureSdk from "./AzureSdk.js"

/**
 * @since 0.1.0
 */
export * as BearerToken from "./BearerToken.js"

/**
 * @since 0.1.0
 */
export * as CertificateCredential from "./CertificateCredential.js"

/**
 * @since 0.1.0
 */
export * as ChainedTokenCredential from "./ChainedTokenCredential.js"

/**
 * @since 0.1.0
 */
export * as ClientAssertionCredential from "./ClientAssertionCredential.js"

/**
 * @since 0.1.0
 */
export * as ClientCertificateCredential from "./CertificateCredential.js"

/**
 * @since 0.1.0
 */
export * as ClientSecretCredential from "./ClientSecretCredential.js"

/**
 * @since 0.1.0
 */
export * as DefaultAzureCredential from "./DefaultAzureCredential.js"

/**
 * @since 0.1.0
 */
export * as DeviceCodeCredential from "./DeviceCodeCredential.js"

/**
 * @since 0.1.0
 */
export * as EnvironmentCredential from "./EnvironmentCredential.js"

/**
 * @since 0.1.0
 */
export * as IdentityError from "./IdentityError.js"

/**
 * @since 0.1.0
 */
export * as IdentityMetrics from "./IdentityMetrics.js"

/**
 * @since 0.1.0
 */
export * as InteractiveBrowserCredential from "./InteractiveBrowserCredential.js"

/**
 * @since 0.1.0
 */
export * as ManagedIdentityCredential from "./ManagedIdentityCredential.js"

/**
 * @since 0.1.0
 */
export * as OnBehalfOfCredential from "./OnBehalfOfCredential.js"

/**
 * @since 0.1.0
 */
export * as PinnedHttpClient from "./PinnedHttpClient.js"

/**
 * @since 0.1.0
 */
export * as RetryOptions from "./RetryOptions.js"

/**
 * @since 0.1.0
 */
export * as SharedTokenCacheCredential from "./SharedTokenCacheCredential.js"

/**
 * @since 0.1.0
 */
export * as TestCredential from "./TestCredential.js"

/**
 * @since 0.1.0
 */
export * as TestHttpClient from "./TestHttpClient.js"

/**
 * @since 0.1.0
 */
export * as TokenCache from "./TokenCache.js"

/**
 * @since 0.1.0
 */
export * as TokenCredential from "./TokenCredential.js"

/**
 * @since 0.1.0
 */
export * as UserCredential from "./UserCredential.js"

/**
 * @since 0.1.0
 */
export * as UsernamePasswordCredential from "./UsernamePasswordCredential.js"

/**
 * @since 0.1.0
 */
export * as WorkloadIdentityCredential from "./WorkloadIdentityCredential.js"

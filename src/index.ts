/**
 * The package's main entry: every public module of `effect-azure-identity` as a namespace, e.g.
 * `import { ClientSecretCredential, TokenCredential } from "effect-azure-identity"`. `effect-azure-identity/node`,
 * `effect-azure-identity/LoopbackServer` and `effect-azure-identity/RedisTokenCache` are imported by their path only.
 *
 * @since 0.1.0
 */

/**
 * An access token as every credential returns it.
 *
 * @since 0.1.0
 */
export * as AccessToken from "./AccessToken.js"

/**
 * The record of a user's sign-in: which account, at which authority, for which app.
 *
 * @since 0.1.0
 */
export * as AuthenticationRecord from "./AuthenticationRecord.js"

/**
 * Authority hosts (clouds), tenant ids and scopes.
 *
 * @since 0.1.0
 */
export * as AuthorityHost from "./AuthorityHost.js"

/**
 * Signs a user in with an authorization code obtained elsewhere (a web app's redirect from
 * `{authorityHost}/{tenantId}/oauth2/v2.0/authorize`), then keeps the user signed in with the refresh token.
 *
 * @since 0.1.0
 */
export * as AuthorizationCodeCredential from "./AuthorizationCodeCredential.js"

/**
 * Gets tokens from the Azure CLI (`az`) the developer is signed in to.
 *
 * @since 0.1.0
 */
export * as AzureCliCredential from "./AzureCliCredential.js"

/**
 * Gets tokens from the Azure Developer CLI (`azd`) the developer is signed in to.
 *
 * @since 0.1.0
 */
export * as AzureDeveloperCliCredential from "./AzureDeveloperCliCredential.js"

/**
 * Authenticates as the app behind an Azure Pipelines service connection that uses workload identity federation.
 *
 * @since 0.1.0
 */
export * as AzurePipelinesCredential from "./AzurePipelinesCredential.js"

/**
 * Gets tokens from Azure PowerShell (`Connect-AzAccount`), through `Get-AzAccessToken` of the Az.Accounts module.
 *
 * @since 0.1.0
 */
export * as AzurePowerShellCredential from "./AzurePowerShellCredential.js"

/**
 * Interoperability with the Azure SDK for JavaScript (`@azure/*` clients and `@azure/identity`).
 *
 * @since 0.1.0
 */
export * as AzureSdk from "./AzureSdk.js"

/**
 * `HttpClient` middleware that authenticates requests with a bearer token from a `TokenCredential`, the way the Azure
 * SDK's bearer-token policy does.
 *
 * @since 0.1.0
 */
export * as BearerToken from "./BearerToken.js"

/**
 * Authenticates an app (service principal) with a certificate.
 *
 * @since 0.1.0
 */
export * as CertificateCredential from "./CertificateCredential.js"

/**
 * Tries several credentials in order and returns the first token.
 *
 * @since 0.1.0
 */
export * as ChainedTokenCredential from "./ChainedTokenCredential.js"

/**
 * Authenticates an app (service principal) with a client assertion you supply.
 *
 * @since 0.1.0
 */
export * as ClientAssertionCredential from "./ClientAssertionCredential.js"

/**
 * `CertificateCredential` under the name `@azure/identity` gives it (`ClientCertificateCredential`).
 *
 * @since 0.1.0
 */
export * as ClientCertificateCredential from "./CertificateCredential.js"

/**
 * Authenticates an app (service principal) with a client secret.
 *
 * @since 0.1.0
 */
export * as ClientSecretCredential from "./ClientSecretCredential.js"

/**
 * The standard chain: one credential that works in production on Azure and on a developer's machine.
 *
 * @since 0.1.0
 */
export * as DefaultAzureCredential from "./DefaultAzureCredential.js"

/**
 * Signs a user in with the OAuth 2.0 device authorization grant.
 *
 * @since 0.1.0
 */
export * as DeviceCodeCredential from "./DeviceCodeCredential.js"

/**
 * Picks a credential from `AZURE_*` environment variables (read through `Config`), first match wins.
 *
 * @since 0.1.0
 */
export * as EnvironmentCredential from "./EnvironmentCredential.js"

/**
 * The typed errors every credential fails with.
 *
 * @since 0.1.0
 */
export * as IdentityError from "./IdentityError.js"

/**
 * The metrics the library records, through effect's `Metric`: token requests by outcome, their latency, and the tokens
 * cached.
 *
 * @since 0.1.0
 */
export * as IdentityMetrics from "./IdentityMetrics.js"

/**
 * Signs a user in through the system browser.
 *
 * @since 0.1.0
 */
export * as InteractiveBrowserCredential from "./InteractiveBrowserCredential.js"

/**
 * Gets tokens for the managed identity of the Azure host the program runs on.
 *
 * @since 0.1.0
 */
export * as ManagedIdentityCredential from "./ManagedIdentityCredential.js"

/**
 * The on-behalf-of flow (OBO): a middle-tier API exchanges the access token it received from a user for a token to
 * call another API as that user.
 *
 * @since 0.1.0
 */
export * as OnBehalfOfCredential from "./OnBehalfOfCredential.js"

/**
 * An `HttpClient` that trusts exactly one server certificate, named by its thumbprint, instead of the certificate
 * authorities.
 *
 * @since 0.1.0
 */
export * as PinnedHttpClient from "./PinnedHttpClient.js"

/**
 * How a credential retries its HTTP requests.
 *
 * @since 0.1.0
 */
export * as RetryOptions from "./RetryOptions.js"

/**
 * Signs in as a user found in the MSAL shared token cache.
 *
 * @since 0.1.0
 */
export * as SharedTokenCacheCredential from "./SharedTokenCacheCredential.js"

/**
 * A `TokenCredential` for your own tests: fixed or scripted tokens and failures, every call counted and recorded.
 *
 * @since 0.1.0
 */
export * as TestCredential from "./TestCredential.js"

/**
 * A recording mock `HttpClient` for your own tests.
 *
 * @since 0.1.0
 */
export * as TestHttpClient from "./TestHttpClient.js"

/**
 * Token caching and the refresh policy.
 *
 * @since 0.1.0
 */
export * as TokenCache from "./TokenCache.js"

/**
 * The one capability every credential provides.
 *
 * @since 0.1.0
 */
export * as TokenCredential from "./TokenCredential.js"

/**
 * What the user credentials (`InteractiveBrowserCredential`, `DeviceCodeCredential`, `UsernamePasswordCredential`)
 * offer besides `TokenCredential`.
 *
 * @since 0.1.0
 */
export * as UserCredential from "./UserCredential.js"

/**
 * Signs a user in with a username and password: the OAuth 2.0 resource owner password credentials grant (ROPC).
 *
 * @since 0.1.0
 */
export * as UsernamePasswordCredential from "./UsernamePasswordCredential.js"

/**
 * Authenticates with a federated token from a file.
 *
 * @since 0.1.0
 */
export * as WorkloadIdentityCredential from "./WorkloadIdentityCredential.js"

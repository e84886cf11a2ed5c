/**
 * Signs in as a user found in the MSAL shared token cache: the file that developer tools using Azure single sign-on
 * (Visual Studio, older Azure CLI and VS Code extensions, SDK credentials with a persistent cache) keep at
 * `~/.IdentityService/msal.cache` (`%LOCALAPPDATA%\.IdentityService\msal.cache` on Windows).
 *
 * - The file is read through `FileSystem` at every network-bound `getToken`: `msal.cache.nocae` (or `.cae` when
 *   `enableCae` is set) first, then `msal.cache`. `cachePath` replaces the base name.
 * - Accounts: those of the authority's cloud (every alias of its host) holding a refresh token of the family of
 *   Microsoft client ids (FOCI), or one issued to the developer sign-on app. One account must remain after the
 *   authentication record, or the `username` and/or `tenantId` filters; otherwise the error lists the accounts and
 *   says which option disambiguates.
 * - A cached access token for the account and scopes is returned while it needs no refresh; otherwise the account's
 *   refresh tokens are redeemed in turn (client id `04b07795-8ddb-461a-bbee-02f9e1bf7b46`) and the new access token
 *   and rotated refresh token are merged back into the file as it is then (every other program's entries kept),
 *   under the lock file `<cache>.lockfile`, through a temporary file renamed over the cache. A failed write-back is
 *   logged; the token is still returned.
 * - Only plaintext caches can be read. Windows encrypts the file with DPAPI and macOS keeps the cache in the
 *   Keychain; on Linux a plaintext file exists only when the signing-in tool was allowed to fall back to unencrypted
 *   storage (it uses the Secret Service keyring otherwise). See `supported`.
 * - `layerConfig()` reads `AZURE_USERNAME` and `AZURE_TENANT_ID`; every layer reads `AZURE_AUTHORITY_HOST`,
 *   `AZURE_ADDITIONALLY_ALLOWED_TENANTS`, and `HOME` / `USERPROFILE` / `LOCALAPPDATA` to find the file.
 * - In a chain: no file, no account, several accounts, an unreadable or corrupt file, or no answer from the
 *   authority → `CredentialUnavailableError` (the chain moves on); expired or revoked refresh tokens →
 *   `AuthenticationRequiredError` (moves on); any other refusal by the authority → `ClientAuthenticationError`
 *   (the chain stops).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { SharedTokenCacheCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const Credential = SharedTokenCacheCredential.layer({ username: "alice@contoso.com" }).pipe(
 *   Layer.provide(IdentityNode.layer)
 * )
 *
 * TokenCredential.getToken("https://management.azure.com/.default").pipe(Effect.provide(Credential))
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { CredentialUnavailableError } from "./IdentityError.js"
import { describeConfigError } from "./internal/confidentialClient.js"
import { lazyModule } from "./internal/lazy.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The credential's name, `"SharedTokenCacheCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "SharedTokenCacheCredential"

/**
 * The developer sign-on app (the Azure CLI's client id) used to redeem refresh tokens.
 *
 * @since 0.1.0
 * @category constants
 */
export const developerSignOnClientId: string = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

/**
 * The record of a sign-in, as `@azure/identity` and `azure-identity` serialise it
 * (`{"authority","homeAccountId","tenantId","username","clientId","version"}`).
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthenticationRecord {
  /** The authority host, e.g. `login.microsoftonline.com`. */
  readonly authority: string
  readonly homeAccountId: string
  readonly tenantId: string
  readonly username: string
  readonly clientId?: string | undefined
  readonly version?: string | undefined
}

/**
 * How `SharedTokenCacheCredential` waits for, and when it breaks, the cache's lock file (`<cache>.lockfile`).
 *
 * @since 0.1.0
 * @category models
 */
export interface LockOptions {
  /** A lock older than this is left over by a crashed writer and is removed (default 10 s). */
  readonly staleMillis: number
  /** Give up waiting for the lock after this long (default 15 s). */
  readonly timeoutMillis: number
  /** How often to look at the lock again while another program holds it (default 50 ms). */
  readonly pollMillis: number
}

/**
 * The options of `make`, `layer` and `layerConfig`, all optional: which account of the shared cache to use (`username`,
 * `tenantId` or an `authenticationRecord`), where the cache file is, and how long to wait for its lock. The cache file
 * defaults to `~/.IdentityService/msal.cache`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Pick the account with this username (case-insensitive). */
  readonly username?: string | undefined
  /** Pick the account whose home tenant is this one; also the tenant tokens are requested from. */
  readonly tenantId?: string | undefined
  /** Pick exactly the account of this sign-in (its home account id); its tenant and client id are used. */
  readonly authenticationRecord?: AuthenticationRecord | undefined
  /** The cache file's base path (default `~/.IdentityService/msal.cache`); `.nocae` / `.cae` variants are tried first. */
  readonly cachePath?: string | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
  /** How long to wait for, and when to break, the cache's lock file. */
  readonly lock?: Partial<LockOptions> | undefined
}

/**
 * The operating system, as Node's `process.platform` names it (`"linux"`, `"darwin"`, `"win32"`, …). Read from
 * `process.platform` unless provided, so tests can pretend to be another platform.
 *
 * @since 0.1.0
 * @category platform
 */
export class Platform
  extends Context.Reference<Platform>()("effect-azure-identity/SharedTokenCacheCredential/Platform", {
    defaultValue: (): string => (globalThis as { process?: { platform?: string } }).process?.platform ?? "unknown"
  })
{}

/**
 * Whether a shared token cache this library can read can exist at the default location on this platform: `true`
 * on Linux only, where MSAL's opt-in unencrypted fallback writes the cache as a plaintext file. On Windows the file
 * is encrypted with DPAPI and on macOS the cache lives in the Keychain, neither of which this library reads; other
 * platforms have no shared cache. An explicit `cachePath` to a plaintext MSAL cache works on every platform.
 *
 * @since 0.1.0
 * @category platform
 */
export const supported: Effect.Effect<boolean> = Effect.map(Platform, (platform) => platform === "linux")

// the MSAL cache file's code, loaded when a credential is built (not at import: docs/performance.md, "Import cost")
const implementation = lazyModule(() => import("./internal/sharedTokenCache.js"))

/**
 * Builds the credential's `TokenCredential` service in the current scope, which its token cache lives in: for composing
 * services by hand (most programs use `layer`). Needs `HttpClient` and `FileSystem`; it never fails: a problem with the
 * options surfaces from `getToken`. The `FileSystem` reads the MSAL cache file and takes its lock.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | FileSystem.FileSystem | Scope.Scope> =>
  Effect.flatMap(implementation, (impl) => impl.make(options))

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided and an account is chosen). Needs `HttpClient` and `FileSystem` (`effect-azure-identity/node`'s
 * `layer` provides them); it never fails to build: a problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

/**
 * Reads the options from `Config`; by default `AZURE_USERNAME` and `AZURE_TENANT_ID`, both optional.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = {
    username: Config.string("AZURE_USERNAME").pipe(Config.option, Config.map(Option.getOrUndefined)),
    tenantId: Config.string("AZURE_TENANT_ID").pipe(Config.option, Config.map(Option.getOrUndefined))
  }
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Layer.scoped(
    TokenCredential.TokenCredential,
    Config.unwrap(config).pipe(
      Effect.matchEffect({
        onFailure: (error) =>
          Effect.succeed(
            TokenCredential.make(
              name,
              () =>
                Effect.fail(
                  new CredentialUnavailableError({
                    credential: name,
                    reason: describeConfigError(error),
                    code: "not-configured"
                  })
                )
            )
          ),
        onSuccess: make
      })
    )
  )

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
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as AccessToken from "./AccessToken.js"
import * as AuthorityHost from "./AuthorityHost.js"
import { AuthenticationRequiredError, ClientAuthenticationError, CredentialUnavailableError } from "./IdentityError.js"
import { entraClient, mergeClaims, requestToken } from "./internal/aad.js"
import * as BoundedFile from "./internal/boundedFile.js"
import { describeConfigError } from "./internal/confidentialClient.js"
import * as Msal from "./internal/msalCache.js"
import * as TokenCacheEngine from "./internal/tokenCache.js"
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
export const developerSignOnClientId: string = Msal.developerSignOnClientId

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

/** The default base path of the cache, from the environment; a description of what is missing otherwise. */
const defaultCachePath = (platform: string): Effect.Effect<Either.Either<string, string>> =>
  Effect.gen(function*() {
    const read = (key: string) =>
      Config.option(Config.string(key)).pipe(
        Effect.map(Option.filter((v) => v.trim() !== "")),
        Effect.orElseSucceed(() => Option.none<string>())
      )
    if (platform === "win32") {
      const local = yield* read("LOCALAPPDATA")
      if (Option.isSome(local)) return Either.right(`${local.value}\\.IdentityService\\msal.cache`)
      const profile = yield* read("USERPROFILE")
      if (Option.isSome(profile)) return Either.right(`${profile.value}\\AppData\\Local\\.IdentityService\\msal.cache`)
      return Either.left("neither LOCALAPPDATA nor USERPROFILE is set: set one, or pass the cachePath option")
    }
    const home = yield* read("HOME")
    const base = Option.isSome(home) ? home : yield* read("USERPROFILE")
    if (Option.isSome(base)) return Either.right(`${base.value.replace(/\/+$/, "")}/.IdentityService/msal.cache`)
    return Either.left("the home directory is unknown (HOME is not set): set HOME, or pass the cachePath option")
  })

const missingFileReason = (platform: string, tried: ReadonlyArray<string>): string => {
  const where = `no shared token cache file was found (looked for ${tried.join(", ")})`
  switch (platform) {
    case "linux":
      return `${where}. On Linux, developer tools keep the MSAL cache in the Secret Service keyring (libsecret over ` +
        `D-Bus, e.g. GNOME Keyring), which this credential cannot read; a plaintext cache file is written only when ` +
        `the tool that signs in is allowed to fall back to unencrypted storage (azure-identity for Python: ` +
        `TokenCachePersistenceOptions(allow_unencrypted_storage=True); MSAL extensions: usePlaintextFileOnLinux / ` +
        `allow_unencrypted). Sign in with such a tool, point cachePath at a plaintext MSAL cache, or use ` +
        `AzureCliCredential instead.`
    case "darwin":
      return `${where}. On macOS, developer tools keep the MSAL cache in the Keychain, which this credential cannot ` +
        `read: point cachePath at a plaintext MSAL cache, or use AzureCliCredential instead.`
    case "win32":
      return `${where}. Sign in with Visual Studio (Tools > Options > Azure Service Authentication), point cachePath ` +
        `at a plaintext MSAL cache, or use AzureCliCredential instead.`
    default:
      return `${where}: point cachePath at a plaintext MSAL cache, or use AzureCliCredential instead.`
  }
}

const notJsonReason = (platform: string, path: string): string => {
  switch (platform) {
    case "win32":
      return `the shared token cache ${path} is not plaintext JSON: on Windows it is encrypted with DPAPI, which ` +
        `this credential cannot read. Point cachePath at a plaintext MSAL cache, or use AzureCliCredential instead.`
    case "darwin":
      return `the shared token cache ${path} is not plaintext JSON: on macOS the cache is kept in the Keychain and ` +
        `this file only signals changes. Point cachePath at a plaintext MSAL cache, or use AzureCliCredential instead.`
    default:
      return `the shared token cache ${path} is not valid JSON (corrupt or truncated; it was left untouched): sign ` +
        `in again with the developer tool that writes it, or delete the file`
  }
}

const describeReadError = (error: BoundedFile.BoundedFileError): string =>
  error.problem === "PermissionDenied" ? "permission denied: check the file's owner and mode" : error.reason

interface Loaded {
  readonly path: string
  readonly cache: Msal.Decoded
}

/** Reads the first cache file that exists; the file is never written when it cannot be decoded. */
const loadCache = (
  fs: FileSystem.FileSystem,
  platform: string,
  candidates: ReadonlyArray<string>
): Effect.Effect<Loaded, CredentialUnavailableError> =>
  Effect.gen(function*() {
    const unavailable = (reason: string) =>
      new CredentialUnavailableError({ credential: name, reason, code: "not-signed-in" })
    for (const path of candidates) {
      const text = yield* BoundedFile.readText(fs, path, BoundedFile.limits.msalCache).pipe(
        Effect.map(Option.some),
        Effect.catchAll((error) =>
          error.problem === "NotFound"
            ? Effect.succeed(Option.none<string>())
            : Effect.fail(unavailable(`the shared token cache ${path} could not be read (${describeReadError(error)})`))
        )
      )
      if (Option.isNone(text)) continue
      const decoded = Msal.decodeText(text.value)
      if (Either.isLeft(decoded)) {
        return yield* Effect.fail(unavailable(
          decoded.left._tag === "NotJson"
            ? notJsonReason(platform, path)
            : `the shared token cache ${path} does not have the MSAL cache layout (${decoded.left.detail}; it was ` +
              `left untouched): sign in again with the developer tool that writes it, or delete the file`
        ))
      }
      if (decoded.right.skipped > 0) {
        yield* Effect.logDebug(`skipped ${decoded.right.skipped} malformed entries of the shared token cache ${path}`)
      }
      return { path, cache: decoded.right }
    }
    return yield* Effect.fail(unavailable(missingFileReason(platform, candidates)))
  })

const isInvalidGrant = (error: ClientAuthenticationError) =>
  error.error === "invalid_grant" || error.error === "interaction_required" ||
  (error.errorCodes ?? []).some((c) => [70008, 700082, 50173, 700084, 50076, 50079, 50158].includes(c))

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
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const client = entraClient(yield* HttpClient.HttpClient)
    const platform = yield* Platform
    const unavailable = (reason: string) =>
      TokenCredential.make(name, () => Effect.fail(new CredentialUnavailableError({ credential: name, reason })))

    const record = options.authenticationRecord
    const authority = yield* Effect.either(AuthorityHost.resolve(options.authorityHost))
    if (Either.isLeft(authority)) return unavailable(authority.left.message)
    const configuredTenant = options.tenantId?.trim() || record?.tenantId?.trim() || undefined
    if (configuredTenant !== undefined) {
      const valid = AuthorityHost.validateTenantId(configuredTenant)
      if (Either.isLeft(valid)) return unavailable(valid.left.message)
    }
    const environments = Msal.environmentsOf(record?.authority ?? authority.right)
    const clientId = record?.clientId?.trim() || Msal.developerSignOnClientId
    const additionallyAllowedTenants = options.additionallyAllowedTenants ??
      (yield* AuthorityHost.additionallyAllowedTenantsFromConfig)
    const lock: LockOptions = { ...Msal.defaultLockOptions, ...options.lock }
    const username = options.username?.trim() || undefined
    const tenantFilter = options.tenantId?.trim() || undefined

    const basePath = options.cachePath !== undefined && options.cachePath.trim() !== ""
      ? Either.right(options.cachePath)
      : yield* defaultCachePath(platform)
    if (Either.isLeft(basePath)) return unavailable(basePath.left)
    const candidatesFor = (cae: boolean) => [`${basePath.right}${cae ? ".cae" : ".nocae"}`, basePath.right]

    const cache = yield* TokenCacheEngine.make({
      partition: `${name}|${authority.right}|${clientId}|${record?.homeAccountId ?? ""}|${username ?? ""}|${
        tenantFilter ?? ""
      }|${basePath.right}`,
      name,
      // without a username or record the key does not name the account: another user's token could be served
      persistent: record?.homeAccountId !== undefined || username !== undefined
    })

    const writeBack = (path: string, write: Msal.WriteBack) =>
      Msal.withLock(
        fs,
        `${path}.lockfile`,
        lock,
        Effect.gen(function*() {
          // re-read under the lock: keep what other programs wrote since we read it
          const raw = Msal.parseRaw(yield* BoundedFile.readText(fs, path, BoundedFile.limits.msalCache))
          if (Option.isNone(raw)) {
            return yield* Effect.fail("it is no longer a valid MSAL cache, so it was not overwritten")
          }
          const text = yield* Effect.try({
            try: () => JSON.stringify(Msal.merge(raw.value, write)),
            // a value nested deeper than the stack allows (a corrupt or hostile file) cannot be written back
            catch: () => "it holds values nested too deeply to write back, so it was not overwritten"
          })
          yield* Msal.writeAtomically(fs, path, text)
        })
      ).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning(
            `${name}: could not write the new token back to the shared token cache ${path} (${
              typeof error === "string"
                ? error
                : error instanceof Msal.LockTimeout
                ? `its lock ${error.lockPath} was held for ${Math.round(error.waitedMillis / 1000)} s`
                : error instanceof BoundedFile.BoundedFileError
                ? error.reason
                : error._tag === "SystemError"
                ? `${error.reason} ${error.method}`
                : error._tag
            }); the token is still used, and the file was left as it was`
          )
        )
      )

    const fetch = (
      scopes: ReadonlyArray<string>,
      tenantId: string,
      enableCae: boolean,
      claims: string | undefined,
      bypass: boolean
    ): Effect.Effect<
      AccessToken.AccessToken,
      CredentialUnavailableError | ClientAuthenticationError | AuthenticationRequiredError
    > =>
      Effect.gen(function*() {
        const loaded = yield* loadCache(fs, platform, candidatesFor(enableCae))
        const selected = Msal.selectAccount(loaded.cache, {
          environments,
          clientId,
          username,
          tenantId: tenantFilter,
          homeAccountId: record?.homeAccountId
        })
        if (Either.isLeft(selected)) {
          return yield* Effect.fail(
            new CredentialUnavailableError({ credential: name, reason: selected.left, code: "not-signed-in" })
          )
        }
        const { account, refreshTokens } = selected.right
        const realm = Msal.realmFor(account, tenantId)
        const now = yield* Clock.currentTimeMillis
        if (!bypass) {
          const cached = Msal.findAccessToken(loaded.cache, {
            account,
            environments,
            clientId,
            realm,
            scopes,
            nowMillis: now
          })
          if (Option.isSome(cached)) return cached.value
        }
        const who = account.username ?? account.home_account_id
        let last: ClientAuthenticationError | undefined
        let allInvalidGrant = true
        for (const rt of refreshTokens) {
          const sentAt = yield* Clock.currentTimeMillis
          const result = yield* Effect.either(requestToken(client, {
            credential: name,
            authorityHost: authority.right,
            tenantId,
            scopes,
            claims,
            retryPolicy: options.retryPolicy,
            form: Effect.succeed({
              grant_type: "refresh_token",
              client_id: clientId,
              refresh_token: rt.secret,
              client_info: "1"
            })
          }))
          if (Either.isRight(result)) {
            const response = result.right
            const target = Option.getOrElse(response.scope, () => scopes.join(" ")).split(/\s+/)
              .filter((s) => s !== "").sort().join(" ")
            yield* writeBack(loaded.path, {
              account,
              clientId,
              realm,
              target,
              accessToken: response.accessToken,
              obtainedAtMillis: sentAt,
              refreshToken: response.refreshToken,
              familyId: response.foci ? "1" : rt.family_id !== undefined ? String(rt.family_id) : undefined
            })
            return response.accessToken
          }
          const error = result.left
          if (error._tag === "CredentialUnavailableError") return yield* Effect.fail(error)
          last = error
          if (!isInvalidGrant(error)) allInvalidGrant = false
        }
        const reason = `Token acquisition failed for user '${who}'. To fix, re-authenticate through developer ` +
          `tooling supporting Azure single sign on${last !== undefined ? ` (${last.reason})` : ""}`
        if (last === undefined || allInvalidGrant) {
          return yield* Effect.fail(
            new AuthenticationRequiredError({
              credential: name,
              reason,
              scopes: [...scopes],
              ...(last?.claims !== undefined ? { claims: last.claims } : {})
            })
          )
        }
        return yield* Effect.fail(
          new ClientAuthenticationError({
            credential: name,
            reason,
            ...(last.status !== undefined ? { status: last.status } : {}),
            ...(last.error !== undefined ? { error: last.error } : {}),
            ...(last.errorDescription !== undefined ? { errorDescription: last.errorDescription } : {}),
            ...(last.errorCodes !== undefined ? { errorCodes: last.errorCodes } : {}),
            ...(last.correlationId !== undefined ? { correlationId: last.correlationId } : {}),
            ...(last.traceId !== undefined ? { traceId: last.traceId } : {}),
            ...(last.claims !== undefined ? { claims: last.claims } : {})
          })
        )
      })

    return TokenCredential.make(name, (scopes, getTokenOptions) => {
      const validScopes = AuthorityHost.validateScopes(scopes)
      if (Either.isLeft(validScopes)) {
        return Effect.fail(
          new CredentialUnavailableError({
            credential: name,
            reason: validScopes.left.message,
            code: "invalid-configuration"
          })
        )
      }
      const requested = getTokenOptions?.tenantId?.trim() || undefined
      const tenant = configuredTenant === undefined && requested === undefined
        ? Either.right("organizations")
        : AuthorityHost.resolveTenant({ configured: configuredTenant, requested, additionallyAllowedTenants })
      if (Either.isLeft(tenant)) {
        return Effect.fail(
          new CredentialUnavailableError({
            credential: name,
            reason: tenant.left.message,
            code: "invalid-configuration"
          })
        )
      }
      const enableCae = getTokenOptions?.enableCae === true
      const claims = mergeClaims(getTokenOptions?.claims, enableCae)
      const bypass = getTokenOptions?.claims !== undefined && getTokenOptions.claims.trim() !== ""
      return cache.get(
        TokenCacheEngine.cacheKey(tenant.right, validScopes.right, enableCae),
        fetch(validScopes.right, tenant.right, enableCae, claims, bypass),
        bypass
      ).pipe(
        Effect.withSpan(`${name}.getToken`, {
          attributes: {
            "azure.identity.credential": name,
            "azure.identity.tenant": tenant.right,
            "azure.identity.scopes": validScopes.right.join(" ")
          }
        })
      )
    })
  }).pipe(Effect.annotateLogs("module", name))

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

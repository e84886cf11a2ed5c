/**
 * The implementation of `SharedTokenCacheCredential.make`: reading, choosing from and writing back to the MSAL cache
 * file. Loaded with `import()` when the credential is built, so that importing the library does not parse it
 * (docs/performance.md, "Import cost").
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as AccessToken from "../AccessToken.js"
import * as AuthorityHost from "../AuthorityHost.js"
import { AuthenticationRequiredError, ClientAuthenticationError, CredentialUnavailableError } from "../IdentityError.js"
import { type LockOptions, name, type Options, Platform } from "../SharedTokenCacheCredential.js"
import * as TokenCredential from "../TokenCredential.js"
import { entraClient, mergeClaims, requestToken } from "./aad.js"
import * as BoundedFile from "./boundedFile.js"
import * as Msal from "./msalCache.js"
import * as TokenCacheEngine from "./tokenCache.js"

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

/** Builds the credential (`SharedTokenCacheCredential.make`). */
export const make = (
  options: Options
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
      const invalidConfiguration = (reason: string) =>
        Effect.fail(new CredentialUnavailableError({ credential: name, reason, code: "invalid-configuration" }))
      const validScopes = AuthorityHost.validateScopes(scopes)
      if (Either.isLeft(validScopes)) return invalidConfiguration(validScopes.left.message)
      const requested = getTokenOptions?.tenantId?.trim() || undefined
      const tenant = configuredTenant === undefined && requested === undefined
        ? Either.right("organizations")
        : AuthorityHost.resolveTenant({ configured: configuredTenant, requested, additionallyAllowedTenants })
      if (Either.isLeft(tenant)) return invalidConfiguration(tenant.left.message)
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

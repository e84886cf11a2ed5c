/**
 * Authority hosts (clouds), tenant ids and scopes.
 *
 * Reads `AZURE_AUTHORITY_HOST` through `Config` when no `authorityHost` option is given. An authority must use
 * `https:`; `http:` is accepted only for loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`), which is how tests and
 * the local emulator run.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/**
 * @since 0.1.0
 * @category clouds
 */
export const AzurePublicCloud = "https://login.microsoftonline.com"

/**
 * @since 0.1.0
 * @category clouds
 */
export const AzureChina = "https://login.chinacloudapi.cn"

/**
 * @since 0.1.0
 * @category clouds
 */
export const AzureGovernment = "https://login.microsoftonline.us"

/**
 * The hosts that name the same cloud, first the canonical one.
 *
 * @since 0.1.0
 * @category clouds
 */
export const aliases: ReadonlyArray<ReadonlyArray<string>> = [
  ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"],
  ["login.chinacloudapi.cn", "login.partner.microsoftonline.cn"],
  ["login.microsoftonline.us", "login.usgovcloudapi.net"]
]

/**
 * True for `localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]`.
 *
 * @since 0.1.0
 * @category validation
 */
export const isLoopbackHost = (hostname: string): boolean => {
  const h = hostname.toLowerCase()
  return h === "localhost" || h.endsWith(".localhost") || h === "[::1]" || h === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/**
 * Normalises an authority host: adds `https://` when no scheme is given, drops trailing slashes, and refuses
 * anything but `https:` (or `http:` on a loopback host). The result has no trailing slash.
 *
 * @since 0.1.0
 * @category validation
 */
export const normalize = (input: string): Either.Either<string, string> => {
  const trimmed = input.trim()
  if (trimmed === "") return Either.left("the authority host is empty")
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    return Either.left(`the authority host ${JSON.stringify(trimmed)} is not a valid URL`)
  }
  if (url.username !== "" || url.password !== "") {
    return Either.left("the authority host must not contain credentials")
  }
  if (url.search !== "" || url.hash !== "") {
    return Either.left("the authority host must not contain a query or fragment")
  }
  if (url.protocol === "http:") {
    if (!isLoopbackHost(url.hostname)) {
      return Either.left(
        `the authority host ${url.origin} uses http:, which is allowed only for loopback hosts; use https://${url.host}`
      )
    }
  } else if (url.protocol !== "https:") {
    return Either.left(`the authority host must use https:, got ${url.protocol}`)
  }
  return Either.right(`${url.origin}${url.pathname.replace(/\/+$/, "")}`)
}

/**
 * The authority host from the option, else `AZURE_AUTHORITY_HOST`, else the public cloud; normalised. Fails with a
 * description of the problem (never with a configuration defect).
 *
 * @since 0.1.0
 * @category config
 */
export const resolve = (option: string | undefined): Effect.Effect<string, string> =>
  Effect.gen(function*() {
    if (option !== undefined) return yield* Either.mapLeft(normalize(option), (e) => `authorityHost option: ${e}`)
    const env = yield* Config.option(Config.string("AZURE_AUTHORITY_HOST")).pipe(
      Effect.orElseSucceed(() => Option.none<string>())
    )
    if (Option.isSome(env) && env.value.trim() !== "") {
      return yield* Either.mapLeft(normalize(env.value), (e) => `AZURE_AUTHORITY_HOST: ${e}`)
    }
    return AzurePublicCloud
  })

const tenantIdPattern = /^[0-9A-Za-z.-]+$/

/**
 * Tenant ids are GUIDs, verified domains, or `organizations` / `common` / `consumers`: `[A-Za-z0-9.-]+`, and not
 * dots only (`.` and `..` would be path segments of the token endpoint URL).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateTenantId = (tenantId: string): Either.Either<string, string> =>
  tenantIdPattern.test(tenantId) && !/^\.+$/.test(tenantId)
    ? Either.right(tenantId)
    : Either.left(
      `invalid tenant id ${JSON.stringify(tenantId.slice(0, 80))}: use the directory (tenant) id GUID or a ` +
        `verified domain such as contoso.onmicrosoft.com (letters, digits, '.' and '-' only)`
    )

const devToolScopePattern = /^[0-9A-Za-z_.:/-]+$/

/**
 * Scopes sent to token endpoints: non-empty, no whitespace or control characters (each scope is one word of the
 * space-separated `scope` parameter).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateScopes = (
  scopes: string | ReadonlyArray<string>
): Either.Either<ReadonlyArray<string>, string> => {
  const list = typeof scopes === "string" ? [scopes] : scopes
  if (list.length === 0) {
    return Either.left("no scope was given: pass at least one, e.g. \"https://management.azure.com/.default\"")
  }
  for (const scope of list) {
    if (typeof scope !== "string" || scope === "" || /[\s\u0000-\u001f\u007f"\\]/.test(scope)) {
      return Either.left(
        `invalid scope ${JSON.stringify(String(scope).slice(0, 80))}: a scope is one word without spaces, ` +
          `quotes or control characters, e.g. "https://vault.azure.net/.default"`
      )
    }
  }
  return Either.right(list)
}

/**
 * Stricter scope check for credentials that put the scope on a command line (`az`, `azd`): `[A-Za-z0-9_.:/-]+`.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateDevToolScope = (scope: string): Either.Either<string, string> =>
  devToolScopePattern.test(scope)
    ? Either.right(scope)
    : Either.left(
      `invalid scope ${JSON.stringify(scope.slice(0, 80))}: only letters, digits and _ . : / - are allowed`
    )

/**
 * A scope as a resource for managed identity and the Azure CLI: drops a trailing `/.default` and nothing else.
 *
 * @since 0.1.0
 * @category scopes
 */
export const scopeToResource = (scope: string): string =>
  scope.endsWith("/.default") ? scope.slice(0, -"/.default".length) : scope

/**
 * The tenant a request goes to. A requested tenant other than the configured one is allowed only if listed in
 * `additionallyAllowedTenants` (or `"*"`), or when no tenant is configured. `adfs` ignores requested tenants.
 *
 * @since 0.1.0
 * @category tenants
 */
export const resolveTenant = (options: {
  readonly configured: string | undefined
  readonly requested: string | undefined
  readonly additionallyAllowedTenants: ReadonlyArray<string>
}): Either.Either<string, string> => {
  const { additionallyAllowedTenants, configured, requested } = options
  if (requested === undefined || requested === "" || requested === configured) {
    return configured === undefined
      ? Either.left("no tenant id is configured; set the tenantId option or AZURE_TENANT_ID")
      : Either.right(configured)
  }
  if (Either.isLeft(validateTenantId(requested))) return validateTenantId(requested)
  if (configured === undefined) return Either.right(requested)
  if (configured.toLowerCase() === "adfs") return Either.right(configured)
  if (
    additionallyAllowedTenants.includes("*") ||
    additionallyAllowedTenants.some((t) => t.toLowerCase() === requested.toLowerCase())
  ) return Either.right(requested)
  return Either.left(
    `it is configured for tenant ${configured}, not for the requested tenant ${requested}. To allow it, add ` +
      `"${requested}" (or "*" for any tenant) to the additionallyAllowedTenants option or to ` +
      `AZURE_ADDITIONALLY_ALLOWED_TENANTS (separated by ';')`
  )
}

/**
 * `AZURE_ADDITIONALLY_ALLOWED_TENANTS` (`;`-separated), read when no option is given.
 *
 * @since 0.1.0
 * @category config
 */
export const additionallyAllowedTenantsFromConfig: Effect.Effect<ReadonlyArray<string>> = Config.option(
  Config.string("AZURE_ADDITIONALLY_ALLOWED_TENANTS")
).pipe(
  Effect.map(Option.match({
    onNone: () => [],
    onSome: (s) => s.split(";").map((t) => t.trim()).filter((t) => t !== "")
  })),
  Effect.orElseSucceed(() => [])
)

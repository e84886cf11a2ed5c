/**
 * Authority hosts (clouds), tenant ids and scopes.
 *
 * Reads `AZURE_AUTHORITY_HOST` through `Config` when no `authorityHost` option is given. An authority must use
 * `https:`; `http:` is accepted only for loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`), which is how tests and
 * the local emulator run.
 *
 * Every validation here fails with `InvalidArgumentError` (naming the option or variable, saying what to fix).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { InvalidArgumentError } from "./IdentityError.js"

/**
 * The authority host of the global Azure cloud, `https://login.microsoftonline.com`: pass it as a credential's
 * `authorityHost` option or in `AZURE_AUTHORITY_HOST`. It is the default.
 *
 * @since 0.1.0
 * @category clouds
 */
export const AzurePublicCloud = "https://login.microsoftonline.com"

/**
 * The authority host of the Azure China cloud (21Vianet), `https://login.chinacloudapi.cn`: pass it as a credential's
 * `authorityHost` option or in `AZURE_AUTHORITY_HOST`.
 *
 * @since 0.1.0
 * @category clouds
 */
export const AzureChina = "https://login.chinacloudapi.cn"

/**
 * The authority host of the Azure US Government cloud, `https://login.microsoftonline.us`: pass it as a credential's
 * `authorityHost` option or in `AZURE_AUTHORITY_HOST`.
 *
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
 * True for `localhost`, `127.0.0.0/8` and `[::1]`. Not for `*.localhost`: resolvers outside the browser send those
 * names to DNS, so they may name any machine.
 *
 * @since 0.1.0
 * @category validation
 */
export const isLoopbackHost = (hostname: string): boolean => {
  const h = hostname.toLowerCase()
  return h === "localhost" || h === "[::1]" || h === "::1" ||
    /^127\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/.test(h)
}

/**
 * Normalises an authority host: adds `https://` when no scheme is given, drops trailing slashes, and refuses
 * anything but `https:` (or `http:` on a loopback host). The result has no trailing slash. `argument` names the
 * option or variable the value came from, for the error.
 *
 * @since 0.1.0
 * @category validation
 */
export const normalize = (
  input: string,
  argument = "authorityHost"
): Either.Either<string, InvalidArgumentError> => {
  const fail = (reason: string) => Either.left(new InvalidArgumentError({ argument, reason }))
  const trimmed = input.trim()
  if (trimmed === "") return fail("the authority host is empty")
  if (/^["'`]|["'`]$/.test(trimmed)) {
    return fail(
      "the authority host is quoted: remove the quotes around the value (write AZURE_AUTHORITY_HOST=https://… , " +
        "not AZURE_AUTHORITY_HOST=\"https://…\")"
    )
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    return fail(`the authority host ${JSON.stringify(trimmed.slice(0, 200))} is not a valid URL`)
  }
  if (url.username !== "" || url.password !== "") {
    return fail("the authority host must not contain credentials")
  }
  if (url.search !== "" || url.hash !== "") {
    return fail("the authority host must not contain a query or fragment")
  }
  if (url.protocol === "http:") {
    if (!isLoopbackHost(url.hostname)) {
      return fail(
        `the authority host ${url.origin} uses http:, which is allowed only for loopback hosts (localhost, ` +
          `127.0.0.0/8, [::1]); use https://${url.host}`
      )
    }
  } else if (url.protocol !== "https:") {
    return fail(`the authority host must use https:, got ${url.protocol}`)
  }
  return Either.right(`${url.origin}${url.pathname.replace(/\/+$/, "")}`)
}

/**
 * The authority host from the option, else `AZURE_AUTHORITY_HOST`, else the public cloud; normalised. Fails with
 * `InvalidArgumentError` naming the option or the variable (never with a configuration defect).
 *
 * @since 0.1.0
 * @category config
 */
export const resolve = (option: string | undefined): Effect.Effect<string, InvalidArgumentError> =>
  Effect.gen(function*() {
    if (option !== undefined) {
      return yield* Either.mapLeft(
        normalize(option, "authorityHost"),
        (e) => new InvalidArgumentError({ argument: e.argument, reason: `authorityHost option: ${e.reason}` })
      )
    }
    const env = yield* Config.option(Config.string("AZURE_AUTHORITY_HOST")).pipe(
      Effect.orElseSucceed(() => Option.none<string>())
    )
    if (Option.isSome(env) && env.value.trim() !== "") {
      return yield* Either.mapLeft(
        normalize(env.value, "AZURE_AUTHORITY_HOST"),
        (e) => new InvalidArgumentError({ argument: e.argument, reason: `AZURE_AUTHORITY_HOST: ${e.reason}` })
      )
    }
    return AzurePublicCloud
  })

const tenantIdPattern = /^[0-9A-Za-z][0-9A-Za-z.-]*$/

/**
 * Tenant ids are GUIDs, verified domains, or `organizations` / `common` / `consumers`: letters, digits, `.` and `-`,
 * not starting with `-` or `.` (a leading `-` would read as an option on an `az`/`azd` command line; `.` and `..`
 * would be path segments of the token endpoint URL).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateTenantId = (
  tenantId: string,
  argument = "tenantId"
): Either.Either<string, InvalidArgumentError> =>
  tenantIdPattern.test(tenantId)
    ? Either.right(tenantId)
    : Either.left(
      new InvalidArgumentError({
        argument,
        reason: `invalid tenant id ${JSON.stringify(tenantId.slice(0, 80))}: use the directory (tenant) id GUID or ` +
          `a verified domain such as contoso.onmicrosoft.com (letters, digits, '.' and '-' only, starting with a ` +
          `letter or digit)`
      })
    )

const devToolScopePattern = /^[0-9A-Za-z_.:/][0-9A-Za-z_.:/-]*$/

/**
 * Scopes sent to token endpoints: non-empty, no whitespace, quotes or control characters (each scope is one word of
 * the space-separated `scope` parameter), and not starting with `-` (it would read as an option on a command line).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateScopes = (
  scopes: string | ReadonlyArray<string>
): Either.Either<ReadonlyArray<string>, InvalidArgumentError> => {
  const list = typeof scopes === "string" ? [scopes] : scopes
  if (list.length === 0) {
    return Either.left(
      new InvalidArgumentError({
        argument: "scopes",
        reason: "no scope was given: pass at least one, e.g. \"https://management.azure.com/.default\""
      })
    )
  }
  for (const scope of list) {
    if (
      typeof scope !== "string" || scope === "" || scope.startsWith("-") ||
      /[\s\u0000-\u001f\u007f-\u009f"'`\\]/.test(scope)
    ) {
      return Either.left(
        new InvalidArgumentError({
          argument: "scopes",
          reason: `invalid scope ${JSON.stringify(String(scope).slice(0, 80))}: a scope is one word without ` +
            `spaces, quotes or control characters that does not start with '-', e.g. ` +
            `"https://vault.azure.net/.default"`
        })
      )
    }
  }
  return Either.right(list)
}

/**
 * Stricter scope check for credentials that put the scope on a command line (`az`, `azd`): `[A-Za-z0-9_.:/-]+`,
 * not starting with `-`.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateDevToolScope = (scope: string): Either.Either<string, InvalidArgumentError> =>
  devToolScopePattern.test(scope)
    ? Either.right(scope)
    : Either.left(
      new InvalidArgumentError({
        argument: "scopes",
        reason: `invalid scope ${JSON.stringify(scope.slice(0, 80))}: only letters, digits and _ . : / - are ` +
          `allowed, and it must not start with '-'`
      })
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
}): Either.Either<string, InvalidArgumentError> => {
  const { additionallyAllowedTenants, configured, requested } = options
  const fail = (reason: string) => Either.left(new InvalidArgumentError({ argument: "tenantId", reason }))
  if (requested === undefined || requested === "" || requested === configured) {
    return configured === undefined
      ? fail("no tenant id is configured; set the tenantId option or AZURE_TENANT_ID")
      : Either.right(configured)
  }
  const valid = validateTenantId(requested)
  if (Either.isLeft(valid)) return valid
  if (configured === undefined) return Either.right(requested)
  if (configured.toLowerCase() === "adfs") return Either.right(configured)
  if (
    additionallyAllowedTenants.includes("*") ||
    additionallyAllowedTenants.some((t) => t.toLowerCase() === requested.toLowerCase())
  ) return Either.right(requested)
  return fail(
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

/**
 * The standard chain: one credential that works in production on Azure and on a developer's machine.
 *
 * Tries, in order:
 *
 * 1. `EnvironmentCredential` — a service principal from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
 *    `AZURE_CLIENT_SECRET` / `AZURE_CLIENT_CERTIFICATE_PATH` / `AZURE_USERNAME` + `AZURE_PASSWORD`;
 * 2. `WorkloadIdentityCredential` — AKS workload identity (`AZURE_FEDERATED_TOKEN_FILE`);
 * 3. `ManagedIdentityCredential` — the Azure host's managed identity (user-assigned when `AZURE_CLIENT_ID` or the
 *    `managedIdentityClientId` / `managedIdentityResourceId` options say so). IMDS is probed first (1 s, no retries),
 *    so a machine without it moves on within a second; a negative probe is remembered for 5 minutes only;
 * 4. `SharedTokenCacheCredential` — a user signed in through a tool that writes the MSAL shared cache;
 * 5. `AzureCliCredential` — `az login`;
 * 6. `AzurePowerShellCredential` — `Connect-AzAccount` (Azure PowerShell);
 * 7. `AzureDeveloperCliCredential` — `azd auth login`.
 *
 * Rules of the chain (see `ChainedTokenCredential`): a link that is not configured or cannot be reached
 * (`CredentialUnavailableError`) or needs a user sign-in (`AuthenticationRequiredError`) passes to the next; a link
 * that is configured and fails (`ClientAuthenticationError`, e.g. a wrong secret) stops the chain. When nothing
 * worked, the `ChainedAuthenticationError` lists every link tried, whether it was unavailable or failed, and why.
 *
 * The chain remembers the link that produced a token and starts there next time; if that link later becomes
 * unavailable, the whole chain is walked again.
 *
 * Choose the members with `AZURE_TOKEN_CREDENTIALS` (read through `Config` when the layer is built; trimmed, any
 * case): `prod` (Environment, WorkloadIdentity, ManagedIdentity), `dev` (SharedTokenCache, AzureCli,
 * AzurePowerShell, AzureDeveloperCli), or one credential's name such as `ManagedIdentityCredential` (only that one; a managed
 * identity chosen this way is not probed and keeps its normal retries). Any other value makes every `getToken` fail
 * with a `CredentialUnavailableError` that lists the valid values. The `exclude` option removes members on top of
 * that.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { DefaultAzureCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = DefaultAzureCredential.layer({ exclude: ["SharedTokenCacheCredential"] }).pipe(
 *   Layer.provide(IdentityNode.layer)
 * )
 *
 * TokenCredential.getToken("https://vault.azure.net/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as AzureCliCredential from "./AzureCliCredential.js"
import * as AzureDeveloperCliCredential from "./AzureDeveloperCliCredential.js"
import * as AzurePowerShellCredential from "./AzurePowerShellCredential.js"
import * as ChainedTokenCredential from "./ChainedTokenCredential.js"
import * as EnvironmentCredential from "./EnvironmentCredential.js"
import { CredentialUnavailableError } from "./IdentityError.js"
import * as ManagedIdentityCredential from "./ManagedIdentityCredential.js"
import * as SharedTokenCacheCredential from "./SharedTokenCacheCredential.js"
import * as TokenCredential from "./TokenCredential.js"
import * as WorkloadIdentityCredential from "./WorkloadIdentityCredential.js"

/**
 * The chain's name, `"DefaultAzureCredential"`: the `name` of its service and the `credential` of its errors (a token
 * it returns names the member that produced it).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "DefaultAzureCredential"

/**
 * The members of the chain, in chain order.
 *
 * @since 0.1.0
 * @category members
 */
export const members = [
  "EnvironmentCredential",
  "WorkloadIdentityCredential",
  "ManagedIdentityCredential",
  "SharedTokenCacheCredential",
  "AzureCliCredential",
  "AzurePowerShellCredential",
  "AzureDeveloperCliCredential"
] as const

/**
 * The name of one member of the chain (one of {@link members}), as the `exclude` option and `AZURE_TOKEN_CREDENTIALS`
 * take it.
 *
 * @since 0.1.0
 * @category members
 */
export type Member = typeof members[number]

/**
 * The members `AZURE_TOKEN_CREDENTIALS=prod` selects: what runs on Azure.
 *
 * @since 0.1.0
 * @category members
 */
export const prodMembers: ReadonlyArray<Member> = [
  "EnvironmentCredential",
  "WorkloadIdentityCredential",
  "ManagedIdentityCredential"
]

/**
 * The members `AZURE_TOKEN_CREDENTIALS=dev` selects: what a developer signs in to.
 *
 * @since 0.1.0
 * @category members
 */
export const devMembers: ReadonlyArray<Member> = [
  "SharedTokenCacheCredential",
  "AzureCliCredential",
  "AzurePowerShellCredential",
  "AzureDeveloperCliCredential"
]

/**
 * The options of `make` and `layer`, all optional: members to `exclude`, the identities to use (managed and workload
 * identity client ids), settings shared by the members, and more options per member. Most settings default to the
 * environment variables each member reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Members to leave out of the chain. */
  readonly exclude?: ReadonlyArray<Member> | undefined
  /** Client id of a user-assigned managed identity. Defaults to `AZURE_CLIENT_ID`; system-assigned when unset. */
  readonly managedIdentityClientId?: string | undefined
  /** ARM resource id of a user-assigned managed identity; takes precedence over the client id. */
  readonly managedIdentityResourceId?: string | undefined
  /** Client id for workload identity. Defaults to `AZURE_CLIENT_ID`. */
  readonly workloadIdentityClientId?: string | undefined
  /**
   * The tenant for workload identity (default `AZURE_TENANT_ID`), the shared token cache (account filter), the
   * Azure CLI, Azure PowerShell and the Azure Developer CLI (default: the tool's current tenant).
   */
  readonly tenantId?: string | undefined
  /** How long `az`, `pwsh` and `azd` may run. Default 10 seconds. */
  readonly processTimeout?: Duration.DurationInput | undefined
  /** Tenants `getToken` may ask for besides the configured one. Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** More options for the managed identity member (e.g. `imdsEndpoint`, `probeTimeoutMillis`). */
  readonly managedIdentity?: Partial<ManagedIdentityCredential.Options> | undefined
  /** More options for the shared token cache member (e.g. `username`, default `AZURE_USERNAME`; `cachePath`). */
  readonly sharedTokenCache?: SharedTokenCacheCredential.Options | undefined
  /** More options for the Azure CLI member (e.g. `subscription`, `environment`). */
  readonly azureCli?: AzureCliCredential.Options | undefined
  /** More options for the Azure PowerShell member (e.g. `environment`, `executable`). */
  readonly azurePowerShell?: AzurePowerShellCredential.Options | undefined
  /** More options for the Azure Developer CLI member (e.g. `environment`). */
  readonly azureDeveloperCli?: AzureDeveloperCliCredential.Options | undefined
}

/**
 * What `AZURE_TOKEN_CREDENTIALS` selects: the members, and whether one was named explicitly.
 *
 * @since 0.1.0
 * @category models
 */
export type Selection =
  | { readonly _tag: "Members"; readonly members: ReadonlyArray<Member>; readonly explicit: boolean }
  | { readonly _tag: "Invalid"; readonly reason: string }

/**
 * Interprets a value of `AZURE_TOKEN_CREDENTIALS` (unset or empty: every member).
 *
 * @since 0.1.0
 * @category members
 */
export const selectMembers = (value: string | undefined): Selection => {
  const v = value?.trim().toLowerCase() ?? ""
  if (v === "") return { _tag: "Members", members, explicit: false }
  if (v === "prod") return { _tag: "Members", members: prodMembers, explicit: false }
  if (v === "dev") return { _tag: "Members", members: devMembers, explicit: false }
  const one = members.find((m) => m.toLowerCase() === v)
  if (one !== undefined) return { _tag: "Members", members: [one], explicit: true }
  return {
    _tag: "Invalid",
    reason: `AZURE_TOKEN_CREDENTIALS is set to ${JSON.stringify(value!.trim().slice(0, 80))}, which is not a valid ` +
      `value. Use "prod" (${prodMembers.join(", ")}), "dev" (${devMembers.join(", ")}), or the name of one ` +
      `credential: ${members.join(", ")}; or unset it to try them all`
  }
}

const optionalString = (key: string): Effect.Effect<string | undefined> =>
  Config.option(Config.string(key)).pipe(
    Effect.map((o) => Option.getOrUndefined(Option.filter(o, (s) => s.trim() !== ""))),
    Effect.orElseSucceed(() => undefined)
  )

const unavailable = (reason: string): TokenCredential.Service =>
  TokenCredential.make(name, () => Effect.fail(new CredentialUnavailableError({ credential: name, reason })))

/**
 * Builds the chain's `TokenCredential` service in the current scope (every member is built in it), after reading
 * `AZURE_TOKEN_CREDENTIALS` through `Config`. Needs `HttpClient`, `FileSystem` and `CommandExecutor`; it never fails:
 * an invalid selection or a problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  TokenCredential.Service,
  never,
  HttpClient.HttpClient | FileSystem.FileSystem | CommandExecutor.CommandExecutor | Scope.Scope
> =>
  Effect.gen(function*() {
    const selection = selectMembers(yield* optionalString("AZURE_TOKEN_CREDENTIALS"))
    if (selection._tag === "Invalid") {
      yield* Effect.logWarning(`${name}: ${selection.reason}`)
      return unavailable(selection.reason)
    }
    const excluded = new Set<string>(options.exclude ?? [])
    const chosen = selection.members.filter((m) => !excluded.has(m))
    if (chosen.length === 0) {
      return unavailable(
        `every credential of the chain was excluded (selected: ${selection.members.join(", ")}; excluded: ` +
          `${[...excluded].join(", ")}): remove some from the exclude option or change AZURE_TOKEN_CREDENTIALS`
      )
    }
    const common = {
      authorityHost: options.authorityHost,
      additionallyAllowedTenants: options.additionallyAllowedTenants
    }
    const processTimeout = options.processTimeout === undefined ? {} : { processTimeout: options.processTimeout }
    const build = (member: Member): Effect.Effect<
      TokenCredential.Service,
      never,
      HttpClient.HttpClient | FileSystem.FileSystem | CommandExecutor.CommandExecutor | Scope.Scope
    > => {
      switch (member) {
        case "EnvironmentCredential":
          return EnvironmentCredential.make(common)
        case "WorkloadIdentityCredential":
          return WorkloadIdentityCredential.make({
            ...common,
            tenantId: options.tenantId,
            clientId: options.workloadIdentityClientId
          })
        case "ManagedIdentityCredential":
          return Effect.gen(function*() {
            const more = options.managedIdentity ?? {}
            const resourceId = options.managedIdentityResourceId ?? more.resourceId
            const objectId = more.objectId
            const clientId = resourceId === undefined && objectId === undefined
              ? options.managedIdentityClientId ?? more.clientId ?? (yield* optionalString("AZURE_CLIENT_ID"))
              : undefined
            return yield* ManagedIdentityCredential.make({
              probe: !selection.explicit,
              ...more,
              resourceId,
              objectId,
              clientId
            })
          })
        case "SharedTokenCacheCredential":
          return Effect.gen(function*() {
            const username = yield* optionalString("AZURE_USERNAME")
            return yield* SharedTokenCacheCredential.make({
              ...common,
              username,
              tenantId: options.tenantId,
              ...options.sharedTokenCache
            })
          })
        case "AzureCliCredential":
          return AzureCliCredential.make({
            additionallyAllowedTenants: options.additionallyAllowedTenants,
            tenantId: options.tenantId,
            ...processTimeout,
            ...options.azureCli
          })
        case "AzurePowerShellCredential":
          return AzurePowerShellCredential.make({
            additionallyAllowedTenants: options.additionallyAllowedTenants,
            tenantId: options.tenantId,
            ...processTimeout,
            ...options.azurePowerShell
          })
        case "AzureDeveloperCliCredential":
          return AzureDeveloperCliCredential.make({
            additionallyAllowedTenants: options.additionallyAllowedTenants,
            tenantId: options.tenantId,
            ...processTimeout,
            ...options.azureDeveloperCli
          })
      }
    }
    const services: Array<TokenCredential.Service> = []
    for (const member of chosen) services.push(yield* build(member))
    yield* Effect.logDebug(`${name}: chain ${chosen.join(" → ")}`)
    return ChainedTokenCredential.makeWith(services as [TokenCredential.Service, ...Array<TokenCredential.Service>], {
      name,
      rememberWinner: true
    })
  }).pipe(Effect.annotateLogs("module", name))

/**
 * The default chain. Never fails to build: configuration problems surface from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  TokenCredential.TokenCredential,
  never,
  HttpClient.HttpClient | FileSystem.FileSystem | CommandExecutor.CommandExecutor
> => Layer.scoped(TokenCredential.TokenCredential, make(options))

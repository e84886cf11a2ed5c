/**
 * Gets tokens from Azure PowerShell (`Connect-AzAccount`), through `Get-AzAccessToken` of the Az.Accounts module.
 *
 * Runs `pwsh -NoProfile -NonInteractive -EncodedCommand <script>` (on Windows `pwsh.exe`, then `powershell.exe` when
 * PowerShell 7 is not installed) as a child process through the `CommandExecutor` service:
 *
 * - the script is fixed: the resource and the tenant are never written into it. They reach it through the
 *   environment variables `AZURE_IDENTITY_POWERSHELL_RESOURCE` and `AZURE_IDENTITY_POWERSHELL_TENANT_ID`, and are
 *   validated first anyway (`[A-Za-z0-9_.:/-]` and `[A-Za-z0-9.-]`);
 * - the script checks for Az.Accounts 2.2.0 or later (printing `NO_AZ_ACCOUNT_MODULE` when it is missing), passes
 *   `-AsSecureString` where Az.Accounts 2.17–4.x supports it, and turns a `SecureString` token (the default output
 *   of Az.Accounts 5 and later) back into text inside PowerShell before printing one line of JSON
 *   (`{"Token":…,"ExpiresOn":<epoch seconds>}`);
 * - argv only, never a shell; working directory `/bin` (`%SystemRoot%` on Windows); stdin closed; the process is
 *   stopped after `processTimeout` (10 s by default);
 * - tokens are cached per tenant and resource and refreshed before they expire, like every credential.
 *
 * Reads `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when the `additionallyAllowedTenants` option is not given.
 *
 * In a chain it never stops the chain: PowerShell not installed, Az.Accounts missing (`Install-Module Az`), nobody
 * signed in (`Connect-AzAccount`), a timeout, or output that is not a token are each a `CredentialUnavailableError`
 * that says what to do. A `claims` challenge cannot be answered by `Get-AzAccessToken`: the error gives the
 * `Connect-AzAccount -ClaimsChallenge …` command to run. Neither the token nor the raw output appears in an error.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AzurePowerShellCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = AzurePowerShellCredential.layer({ processTimeout: "20 seconds" })
 *   .pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://management.azure.com/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as AccessToken from "./AccessToken.js"
import * as AuthorityHost from "./AuthorityHost.js"
import { maxEpochMillis } from "./internal/aad.js"
import { layerFromConfig } from "./internal/confidentialClient.js"
import * as Tool from "./internal/developerToolFront.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The credential's name, `"AzurePowerShellCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "AzurePowerShellCredential"

/**
 * The options of `make` and `layer`, all optional: by default the tenant of the `Connect-AzAccount` session, `pwsh`
 * from `PATH`, and a 10-second limit per run.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The tenant to ask tokens for (`Get-AzAccessToken -TenantId`). Defaults to the signed-in context's tenant. */
  readonly tenantId?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** How long PowerShell may take before it is stopped. Defaults to 10 seconds. */
  readonly processTimeout?: Duration.DurationInput | undefined
  /** Extra environment variables for the child process (e.g. `PSModulePath`), on top of the parent's. */
  readonly environment?: Readonly<Record<string, string>> | undefined
  /**
   * The executable to run. Defaults to `pwsh` (on Windows `pwsh.exe`, then `powershell.exe` when `pwsh.exe` is not
   * found), looked up on `PATH`.
   */
  readonly executable?: string | undefined
}

/**
 * The environment variable that carries the resource into the script.
 *
 * @since 0.1.0
 * @category script
 */
export const resourceVariable = "AZURE_IDENTITY_POWERSHELL_RESOURCE"

/**
 * The environment variable that carries the tenant into the script (empty for the context's tenant).
 *
 * @since 0.1.0
 * @category script
 */
export const tenantVariable = "AZURE_IDENTITY_POWERSHELL_TENANT_ID"

/**
 * What the script prints when Az.Accounts 2.2.0 or later is not installed.
 *
 * @since 0.1.0
 * @category script
 */
export const noModuleMarker = "NO_AZ_ACCOUNT_MODULE"

/**
 * The fixed script run by PowerShell. It takes its inputs from the environment only.
 *
 * @since 0.1.0
 * @category script
 */
export const script = [
  "$ErrorActionPreference = 'Stop'",
  "$module = Get-Module -ListAvailable -Name Az.Accounts | Sort-Object Version -Descending | Select-Object -First 1",
  "if (-not $module -or $module.Version -lt [version]'2.2.0') {",
  `  Write-Output '${noModuleMarker}'`,
  "  exit 0",
  "}",
  "Import-Module Az.Accounts -MinimumVersion 2.2.0 -WarningAction Ignore | Out-Null",
  `$params = @{ ResourceUrl = $env:${resourceVariable}; WarningAction = 'Ignore' }`,
  `if ($env:${tenantVariable}) { $params['TenantId'] = $env:${tenantVariable} }`,
  "if ($module.Version -ge [version]'2.17.0' -and $module.Version -lt [version]'5.0.0') {",
  "  $params['AsSecureString'] = $true",
  "}",
  "$result = Get-AzAccessToken @params",
  "$text = $result.Token",
  "if ($text -is [System.Security.SecureString]) {",
  "  if ($PSVersionTable.PSVersion.Major -lt 7) {",
  "    $bstr = [System.Runtime.InteropServices.Marshal]::SecureStringToBSTR($text)",
  "    try { $text = [System.Runtime.InteropServices.Marshal]::PtrToStringBSTR($bstr) }",
  "    finally { [System.Runtime.InteropServices.Marshal]::ZeroFreeBSTR($bstr) }",
  "  } else {",
  "    $text = ConvertFrom-SecureString -SecureString $text -AsPlainText",
  "  }",
  "}",
  "$answer = [ordered]@{ Token = $text; ExpiresOn = $result.ExpiresOn.ToUnixTimeSeconds() }",
  "Write-Output (ConvertTo-Json -InputObject $answer -Compress)"
].join("\n")

/**
 * The script as `-EncodedCommand` wants it: base64 of its UTF-16LE text (no quoting problems on any platform).
 *
 * @since 0.1.0
 * @category script
 */
export const encodedScript: string = (() => {
  const bytes = new Uint8Array(script.length * 2)
  for (let i = 0; i < script.length; i++) {
    const code = script.charCodeAt(i)
    bytes[2 * i] = code & 0xff
    bytes[2 * i + 1] = code >> 8
  }
  return Encoding.encodeBase64(bytes)
})()

/**
 * The arguments PowerShell is run with.
 *
 * @since 0.1.0
 * @category script
 */
export const args: ReadonlyArray<string> = ["-NoProfile", "-NonInteractive", "-EncodedCommand", encodedScript]

/**
 * One line of the script's answer.
 *
 * @since 0.1.0
 * @category models
 */
export const PowerShellTokenOutput = Schema.Struct({
  Token: Schema.String.pipe(Schema.minLength(1)),
  ExpiresOn: Schema.Union(Schema.Number, Schema.String)
})

const installHint = "install PowerShell 7 (https://aka.ms/install-powershell) and the Az module " +
  "(`Install-Module -Name Az -Scope CurrentUser -Repository PSGallery -Force`), then run `Connect-AzAccount`"

const moduleHint = "the Az.Accounts module (2.2.0 or later) is not installed: install the Az module with " +
  "`Install-Module -Name Az -Scope CurrentUser -Repository PSGallery -Force`, then run `Connect-AzAccount`"

const notFoundPattern = /\bpwsh:.*not found|\bpowershell(?:\.exe)?:.*not found|' is not recognized/im

const moduleMissingPattern =
  /The specified module 'Az\.Accounts'.*was not loaded because no valid module file was found|Get-AzAccessToken' is not recognized/is

/**
 * The `Connect-AzAccount` command that answers a claims challenge.
 *
 * @since 0.1.0
 * @category errors
 */
export const claimsChallengeCommand = (claims: string, tenantId: string | undefined): string =>
  `Connect-AzAccount -ClaimsChallenge ${Encoding.encodeBase64(claims)}` +
  (tenantId === undefined ? "" : ` -Tenant ${tenantId}`)

const expiryMillis = (value: number | string): number | undefined => {
  if (typeof value === "number") {
    return Number.isFinite(value) && value > 0 && value * 1000 <= maxEpochMillis ? value * 1000 : undefined
  }
  return Option.getOrUndefined(Tool.parseRfc3339(value))
}

/**
 * Turns the output of a finished PowerShell run into a token or the reason it is not one. Never puts `stdout`
 * (which may hold a token) into a message; `stderr` only sanitised.
 *
 * @since 0.1.0
 * @category parsing
 */
export const interpret = (
  output: TokenCredential.ToolOutput,
  context: { readonly nowMillis: number; readonly resource: string }
): Either.Either<AccessToken.AccessToken, string> => {
  const said = Tool.sanitize(output.stderr)
  const all = `${output.stderr}\n${output.stdout}`
  if (output.stdout.split(/\r?\n/).some((line) => line.trim() === noModuleMarker) || moduleMissingPattern.test(all)) {
    return Either.left(moduleHint)
  }
  if (output.exitCode === 127 || (output.exitCode !== 0 && notFoundPattern.test(output.stderr.trim()))) {
    return Either.left(`PowerShell was not found on PATH: ${installHint}`)
  }
  if (/run Connect-AzAccount/i.test(all) && !/AADSTS/.test(all)) {
    return Either.left(
      "no account is signed in to Azure PowerShell, or its sign-in has expired: run `Connect-AzAccount` and try " +
        "again" + (said === "" ? "" : ` (PowerShell said: ${said})`)
    )
  }
  if (/AuthorizationManager check failed/i.test(all)) {
    return Either.left(
      "the PowerShell execution policy prevented the script from running: allow scripts for the current user " +
        "(`Set-ExecutionPolicy -Scope CurrentUser RemoteSigned`)"
    )
  }
  if (output.exitCode !== 0) {
    return Either.left(
      `PowerShell exited with code ${output.exitCode}` + (said === "" ? "" : `: ${said}`) +
        `. Run \`Get-AzAccessToken -ResourceUrl ${context.resource}\` in PowerShell yourself to see the problem`
    )
  }
  for (const line of output.stdout.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.startsWith("{"))) {
    const json = Either.try(() => JSON.parse(line) as unknown)
    if (Either.isLeft(json)) continue
    const decoded = Schema.decodeUnknownEither(PowerShellTokenOutput)(json.right)
    if (Either.isLeft(decoded)) continue
    const body = decoded.right
    if (body.Token === "System.Security.SecureString") {
      return Either.left(
        "Get-AzAccessToken returned a SecureString that was not converted to text; update Az.Accounts and " +
          "PowerShell, and check that `Get-AzAccessToken -AsSecureString` works"
      )
    }
    const expiresOnMillis = expiryMillis(body.ExpiresOn)
    if (expiresOnMillis === undefined) {
      return Either.left(
        "Get-AzAccessToken returned a token without a readable expiry (`ExpiresOn`); update Az.Accounts " +
          "(`Update-Module Az.Accounts`)"
      )
    }
    return Either.right(
      AccessToken.make({ token: body.Token, obtainedAtMillis: context.nowMillis, expiresOnMillis })
    )
  }
  return Either.left(
    `PowerShell printed no token answer (${output.stdout.length} characters of output` +
      (said === "" ? "" : `; it said: ${said}`) +
      "); update Az.Accounts (`Update-Module Az.Accounts`) and check that `Get-AzAccessToken` works"
  )
}

/**
 * Builds the credential's `TokenCredential` service in the current scope, which its token cache lives in: for composing
 * services by hand (most programs use `layer`). Needs `CommandExecutor`; it never fails: a problem with the options
 * surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<TokenCredential.Service, never, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Tool.makeCredential({
    name,
    label: "PowerShell",
    subject: "Azure PowerShell",
    installHint,
    // Windows PowerShell 5.1 ships with Windows: the fallback when PowerShell 7 is not installed
    executables: { windows: ["pwsh.exe", "powershell.exe"], posix: ["pwsh"] },
    oneScopeAtATime: true,
    claimsChallengeCommand: (claims, { tenantId }) => claimsChallengeCommand(claims, tenantId),
    invocation: ({ scopes: [scope], tenantId }) => {
      const resource = AuthorityHost.scopeToResource(scope)
      return {
        args,
        env: { [resourceVariable]: resource, [tenantVariable]: tenantId ?? "" },
        tryCommand: `Get-AzAccessToken -ResourceUrl ${resource}`,
        interpret: (output, nowMillis) => Effect.succeed(interpret(output, { nowMillis, resource }))
      }
    }
  }, options)

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided). Needs `CommandExecutor` (`effect-azure-identity/node`'s `layer` provides it); it never fails to
 * build: a problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TokenCredential.TokenCredential, never, CommandExecutor.CommandExecutor> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

/**
 * Reads the options from `Config`; by default only the tenant, from `AZURE_TENANT_ID` when it is set (otherwise
 * the signed-in context's tenant). A configuration error does not fail the layer: `getToken` fails with
 * `CredentialUnavailableError` naming the variables.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = {
    tenantId: Config.string("AZURE_TENANT_ID").pipe(Config.option, Config.map(Option.getOrUndefined))
  }
): Layer.Layer<TokenCredential.TokenCredential, never, CommandExecutor.CommandExecutor> =>
  layerFromConfig(name, Config.unwrap(config), make)

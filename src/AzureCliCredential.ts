/**
 * Gets tokens from the Azure CLI (`az`) the developer is signed in to.
 *
 * Runs `az account get-access-token --output json --resource <resource> [--tenant <tenant>]
 * [--subscription <subscription>]` as a child process through the `CommandExecutor` service:
 *
 * - the argument vector is passed as is, never through a shell; the scope, tenant and subscription are validated
 *   (`[A-Za-z0-9_.:/-]`, `[A-Za-z0-9.-]`, `[A-Za-z0-9._ -]`) before the command is built;
 * - the working directory is `/bin` (`%SystemRoot%` on Windows), so an `az` in the application's directory is never
 *   picked up; the environment is the parent's plus `AZURE_CORE_NO_COLOR=true`; stdin is closed;
 * - the process is stopped after `processTimeout` (10 s by default);
 * - `expires_on` (epoch seconds, Azure CLI 2.54+) is preferred; otherwise `expiresOn` is read as local time (it is
 *   printed in the machine's time zone), in the `DateTime.CurrentTimeZone` when one is provided;
 * - tokens are cached per tenant and resource and refreshed before they expire, like every credential.
 *
 * Reads `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when the `additionallyAllowedTenants` option is not given.
 *
 * In a chain it never stops the chain: every failure is a `CredentialUnavailableError` that says what to do — the
 * CLI is not installed (install it), nobody is signed in (`az login`), it timed out, or it printed something that is
 * not a token. A `claims` challenge cannot be answered by `az account get-access-token`: the error gives the exact
 * `az login --claims-challenge …` command to run. Neither the token nor the tool's raw output ever appears in an
 * error.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AzureCliCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = AzureCliCredential.layer({ processTimeout: "20 seconds" })
 *   .pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://management.azure.com/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as DateTime from "effect/DateTime"
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
import * as Tool from "./internal/developerToolFront.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The credential's name, `"AzureCliCredential"`: the `name` of its service and the `credential` of its errors (and of
 * the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "AzureCliCredential"

/**
 * The options of `make` and `layer`, all optional: by default the CLI's current tenant and subscription, `az` from
 * `PATH`, and a 10-second limit per run.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The tenant to ask tokens for (`--tenant`). Defaults to the CLI's current tenant. */
  readonly tenantId?: string | undefined
  /** The subscription whose tenant to use (`--subscription`), by id or name. */
  readonly subscription?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** How long `az` may take before it is stopped. Defaults to 10 seconds. */
  readonly processTimeout?: Duration.DurationInput | undefined
  /** Extra environment variables for the child process (e.g. `AZURE_CONFIG_DIR`), on top of the parent's. */
  readonly environment?: Readonly<Record<string, string>> | undefined
  /** The executable to run. Defaults to `az` (`az.cmd` on Windows), looked up on `PATH`. */
  readonly executable?: string | undefined
}

/**
 * What `az account get-access-token --output json` prints.
 *
 * @since 0.1.0
 * @category models
 */
export const CliTokenOutput = Schema.Struct({
  accessToken: Schema.String.pipe(Schema.minLength(1)),
  expiresOn: Schema.optional(Schema.String),
  expires_on: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString)),
  tokenType: Schema.optional(Schema.String),
  tenant: Schema.optional(Schema.String),
  subscription: Schema.optional(Schema.String)
})

const installHint = "install the Azure CLI (https://aka.ms/azure-cli) and run `az login`"

const notFoundPattern = /\baz:.*not found|^'az' is not recognized/im

/**
 * The message an `az login` for a claims challenge needs: the exact command to run.
 *
 * @since 0.1.0
 * @category errors
 */
export const claimsChallengeCommand = (claims: string, scope: string, tenantId: string | undefined): string =>
  `az login --claims-challenge ${Encoding.encodeBase64(claims)} --scope ${scope}` +
  (tenantId === undefined ? "" : ` --tenant ${tenantId}`)

/**
 * Turns the output of a finished `az` run into a token or the reason it is not one. Never puts `stdout` (which may
 * hold a token) into a message; `stderr` only sanitised.
 *
 * @since 0.1.0
 * @category parsing
 */
export const interpret = (
  output: TokenCredential.ToolOutput,
  context: { readonly nowMillis: number; readonly zone: DateTime.TimeZone; readonly resource: string }
): Either.Either<AccessToken.AccessToken, string> => {
  const stderr = Tool.sanitize(output.stderr)
  if (output.exitCode !== 0) {
    if (output.exitCode === 127 || notFoundPattern.test(output.stderr.trim())) {
      return Either.left(`the Azure CLI (az) was not found on PATH: ${installHint}`)
    }
    if (/az login|az account set/i.test(output.stderr) && !/AADSTS/.test(output.stderr)) {
      return Either.left(
        `no account is signed in to the Azure CLI, or its sign-in has expired: run \`az login\` and try again` +
          (stderr === "" ? "" : ` (az said: ${stderr})`)
      )
    }
    return Either.left(
      `az account get-access-token exited with code ${output.exitCode}` +
        (stderr === "" ? "" : `: ${stderr}`) +
        `. Run \`az account get-access-token --resource ${context.resource}\` yourself to see the problem`
    )
  }
  const json = Either.try(() => JSON.parse(output.stdout) as unknown)
  if (Either.isLeft(json)) {
    return Either.left(
      `the Azure CLI printed output that is not JSON (${output.stdout.length} characters); ` +
        "update it (`az upgrade`) and check that `az account get-access-token --output json` works"
    )
  }
  const decoded = Schema.decodeUnknownEither(CliTokenOutput)(json.right)
  if (Either.isLeft(decoded)) {
    return Either.left(
      "the Azure CLI printed JSON that is not a token answer (no `accessToken`, or a field of the wrong type); " +
        "update it (`az upgrade`) and check that " +
        "`az account get-access-token --output json` works"
    )
  }
  const body = decoded.right
  let expiresOnMillis: number | undefined
  if (
    body.expires_on !== undefined && Number.isFinite(body.expires_on) && body.expires_on > 0 &&
    body.expires_on * 1000 <= maxEpochMillis
  ) {
    expiresOnMillis = body.expires_on * 1000
  } else if (body.expiresOn !== undefined) {
    expiresOnMillis = Option.getOrUndefined(Tool.parseLocalDateTime(body.expiresOn, context.zone))
  }
  if (expiresOnMillis === undefined) {
    return Either.left(
      "the Azure CLI printed a token without a readable expiry (neither `expires_on` nor a " +
        "`YYYY-MM-DD HH:MM:SS` `expiresOn`); update it (`az upgrade`, 2.54 or later)"
    )
  }
  return Either.right(
    AccessToken.make({
      token: body.accessToken,
      obtainedAtMillis: context.nowMillis,
      expiresOnMillis,
      tokenType: body.tokenType
    })
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
    label: "Azure CLI",
    subject: "the Azure CLI",
    installHint,
    executables: { windows: ["az.cmd"], posix: ["az"] },
    cachePartition: `${name}|${options.subscription ?? ""}`,
    validate: options.subscription === undefined ? undefined : Tool.validateSubscription(options.subscription),
    oneScopeAtATime: true,
    claimsChallengeCommand: (claims, { scope, tenantId }) => claimsChallengeCommand(claims, scope, tenantId),
    invocation: ({ scopes: [scope], tenantId }) => {
      const resource = AuthorityHost.scopeToResource(scope)
      const args = ["account", "get-access-token", "--output", "json", "--resource", resource]
      if (tenantId !== undefined) args.push("--tenant", tenantId)
      if (options.subscription !== undefined) args.push("--subscription", options.subscription)
      return {
        args,
        env: { AZURE_CORE_NO_COLOR: "true" },
        tryCommand: `az account get-access-token --resource ${resource}`,
        interpret: (output, nowMillis) =>
          Effect.map(Tool.localZone, (zone) => interpret(output, { nowMillis, zone, resource }))
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

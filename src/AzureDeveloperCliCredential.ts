/**
 * Gets tokens from the Azure Developer CLI (`azd`) the developer is signed in to.
 *
 * Runs `azd auth token --output json --no-prompt --scope <scope> [--scope …] [--tenant-id <tenant>]
 * [--claims <base64>]` as a child process through the `CommandExecutor` service, with the same rules as
 * `AzureCliCredential`: argv only (never a shell), scopes and tenant validated before the command is built, working
 * directory `/bin` (`%SystemRoot%` on Windows), `AZURE_CORE_NO_COLOR=true`, stdin closed, stopped after
 * `processTimeout` (10 s by default). The answer's `expiresOn` is an RFC 3339 timestamp with its offset. Tokens are
 * cached per tenant and scopes; a `claims` challenge bypasses the cache and is passed to `azd` base64-encoded.
 *
 * Reads `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when the `additionallyAllowedTenants` option is not given.
 *
 * In a chain it never stops the chain: not installed, not signed in (`azd auth login`), timed out, or output that
 * is not a token are each a `CredentialUnavailableError` that says what to do. Neither the token nor the tool's raw
 * output ever appears in an error.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AzureDeveloperCliCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = AzureDeveloperCliCredential.layer().pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://management.azure.com/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as AccessToken from "./AccessToken.js"
import * as Tool from "./internal/developerToolFront.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * The credential's name, `"AzureDeveloperCliCredential"`: the `name` of its service and the `credential` of its errors
 * (and of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "AzureDeveloperCliCredential"

/**
 * The options of `make` and `layer`, all optional: by default `azd`'s current tenant, `azd` from `PATH`, and a
 * 10-second limit per run.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The tenant to ask tokens for (`--tenant-id`). Defaults to azd's current tenant. */
  readonly tenantId?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** How long `azd` may take before it is stopped. Defaults to 10 seconds. */
  readonly processTimeout?: Duration.DurationInput | undefined
  /** Extra environment variables for the child process, on top of the parent's. */
  readonly environment?: Readonly<Record<string, string>> | undefined
  /** The executable to run. Defaults to `azd` (`azd.exe` on Windows), looked up on `PATH`. */
  readonly executable?: string | undefined
}

/**
 * What `azd auth token --output json` prints.
 *
 * @since 0.1.0
 * @category models
 */
export const AzdTokenOutput = Schema.Struct({
  token: Schema.String.pipe(Schema.minLength(1)),
  expiresOn: Schema.String
})

const installHint = "install the Azure Developer CLI (https://aka.ms/azd-install) and run `azd auth login`"

const notFoundPattern = /\bazd:.*not found|^'azd' is not recognized/im

/**
 * Turns the output of a finished `azd` run into a token or the reason it is not one. Never puts `stdout` (which may
 * hold a token) into a message unsanitised.
 *
 * @since 0.1.0
 * @category parsing
 */
export const interpret = (
  output: TokenCredential.ToolOutput,
  context: { readonly nowMillis: number }
): Either.Either<AccessToken.AccessToken, string> => {
  if (output.exitCode !== 0) {
    if (output.exitCode === 127 || notFoundPattern.test(output.stderr.trim())) {
      return Either.left(`the Azure Developer CLI (azd) was not found on PATH: ${installHint}`)
    }
    // azd reports errors on stderr, or on stdout as JSON lines when --output json is given
    const said = Tool.sanitize(`${output.stderr} ${output.stdout}`)
    if (/not logged in|azd auth login|azd login/i.test(said)) {
      return Either.left(
        "no account is signed in to the Azure Developer CLI, or its sign-in has expired: run `azd auth login` " +
          `and try again (azd said: ${said})`
      )
    }
    return Either.left(
      `azd auth token exited with code ${output.exitCode}` + (said === "" ? "" : `: ${said}`) +
        ". Run `azd auth token --output json` yourself to see the problem"
    )
  }
  const json = Either.try(() => JSON.parse(output.stdout) as unknown)
  if (Either.isLeft(json)) {
    return Either.left(
      `the Azure Developer CLI printed output that is not JSON (${output.stdout.length} characters); update it ` +
        "and check that `azd auth token --output json` works"
    )
  }
  const decoded = Schema.decodeUnknownEither(AzdTokenOutput)(json.right)
  if (Either.isLeft(decoded)) {
    return Either.left(
      "the Azure Developer CLI printed JSON that is not a token answer (no `token` or `expiresOn`); update it and " +
        "check that `azd auth token --output json` works"
    )
  }
  const expiresOnMillis = Tool.parseRfc3339(decoded.right.expiresOn)
  if (Option.isNone(expiresOnMillis)) {
    return Either.left(
      "the Azure Developer CLI printed a token whose `expiresOn` is not an RFC 3339 timestamp with an offset; " +
        "update it"
    )
  }
  return Either.right(
    AccessToken.make({
      token: decoded.right.token,
      obtainedAtMillis: context.nowMillis,
      expiresOnMillis: expiresOnMillis.value
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
    label: "Azure Developer CLI",
    subject: "the Azure Developer CLI",
    installHint,
    executables: { windows: ["azd.exe"], posix: ["azd"] },
    oneScopeAtATime: false,
    // no claimsChallengeCommand: azd answers a claims challenge itself (`--claims`)
    invocation: ({ claims, scopes, tenantId }) => {
      const args = ["auth", "token", "--output", "json", "--no-prompt"]
      for (const scope of scopes) args.push("--scope", scope)
      if (tenantId !== undefined) args.push("--tenant-id", tenantId)
      if (claims !== undefined) args.push("--claims", Encoding.encodeBase64(claims))
      return {
        args,
        env: { AZURE_CORE_NO_COLOR: "true" },
        tryCommand: "azd auth token --output json",
        interpret: (output, nowMillis) => Effect.succeed(interpret(output, { nowMillis }))
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

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
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as AccessToken from "./AccessToken.js"
import { CredentialUnavailableError } from "./IdentityError.js"
import * as Confidential from "./internal/confidentialClient.js"
import * as Tool from "./internal/developerTool.js"
import * as TokenCacheEngine from "./internal/tokenCache.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * @since 0.1.0
 * @category names
 */
export const name = "AzureDeveloperCliCredential"

/**
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
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<TokenCredential.Service, never, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Confidential.orUnavailable(
    name,
    Effect.gen(function*() {
      const executor = yield* CommandExecutor.CommandExecutor
      const { additionallyAllowedTenants, configuredTenant, executable, platform, timeout } = yield* Tool
        .setup(options, { windows: "azd.exe", posix: "azd" })
      const unavailable = (reason: string) => new CredentialUnavailableError({ credential: name, reason })

      const cache = yield* TokenCacheEngine.make({ partition: name, name, persistent: false })

      const fetch = (scopes: ReadonlyArray<string>, tenantId: string | undefined, claims: string | undefined) =>
        Effect.gen(function*() {
          const args = ["auth", "token", "--output", "json", "--no-prompt"]
          for (const scope of scopes) args.push("--scope", scope)
          if (tenantId !== undefined) args.push("--tenant-id", tenantId)
          if (claims !== undefined) args.push("--claims", Encoding.encodeBase64(claims))
          const output = yield* Tool.run(executor, {
            executable,
            args,
            cwd: Tool.workingDirectory(platform),
            env: { ...options.environment, AZURE_CORE_NO_COLOR: "true" },
            timeout
          }).pipe(
            Effect.mapError((failure) =>
              unavailable(Tool.describeRunFailure(failure, {
                label: "Azure Developer CLI",
                executable,
                installHint,
                timeout,
                tryCommand: "azd auth token --output json"
              }))
            )
          )
          const nowMillis = yield* Clock.currentTimeMillis
          return yield* Either.mapLeft(interpret(output, { nowMillis }), unavailable)
        })

      return TokenCredential.make(name, (scopes, getTokenOptions) =>
        Effect.gen(function*() {
          const list = yield* Either.mapLeft(Tool.validateScopes(scopes), Confidential.unavailableFor(name))
          const tenantId = yield* Either.mapLeft(
            Tool.selectTenant({
              configured: configuredTenant,
              requested: getTokenOptions?.tenantId,
              additionallyAllowedTenants
            }),
            Confidential.unavailableFor(name)
          )
          const claims = getTokenOptions?.claims?.trim() === "" ? undefined : getTokenOptions?.claims?.trim()
          const enableCae = getTokenOptions?.enableCae === true
          return yield* cache.get(
            TokenCacheEngine.cacheKey(tenantId ?? "", list, enableCae),
            fetch(list, tenantId, claims),
            claims !== undefined
          )
        }).pipe(
          Effect.withSpan("AzureDeveloperCliCredential.getToken", {
            attributes: { credential: name, scopes: typeof scopes === "string" ? [scopes] : scopes }
          })
        ))
    })
  ).pipe(Effect.annotateLogs("module", name))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TokenCredential.TokenCredential, never, CommandExecutor.CommandExecutor> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

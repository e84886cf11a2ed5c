/**
 * The `effect-azure-identity` command line: `token`, `doctor` and `emulator`.
 *
 * Expected failures (every `IdentityError`, a bad option) print their message to stderr and exit 1, never a stack
 * trace. Tokens are printed only with `--show-token`.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import type { AccessToken } from "effect-azure-identity/AccessToken"
import * as DefaultAzureCredential from "effect-azure-identity/DefaultAzureCredential"
import type { IdentityError, LinkError } from "effect-azure-identity/IdentityError"
import { CredentialUnavailableError, isIdentityError } from "effect-azure-identity/IdentityError"
import * as TokenCredential from "effect-azure-identity/TokenCredential"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as IdentityEmulator from "../../IdentityEmulator.js"
import { version as libraryVersion } from "../version.js"
import type { CredentialChoice, NodeServices } from "./credentials.js"
import { credentialChoices, credentialLayer, defaultChainMember, noteChainWinner, Producer } from "./credentials.js"

/** A failure already reported to the user: exit non-zero without printing anything more. @internal */
export class Reported extends Data.TaggedError("Reported")<{ readonly exitCode: number }> {}

const reportIdentityError = (error: IdentityError) =>
  Effect.zipRight(Console.error(`error: ${error.message}`), Effect.fail(new Reported({ exitCode: 1 })))

/** The claims of a JWT, unverified; `undefined` when the token is not a JWT. @internal */
export const decodeClaims = (token: string): Record<string, unknown> | undefined => {
  const parts = token.split(".")
  if (parts.length !== 3) return undefined
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"))
    return typeof claims === "object" && claims !== null && !Array.isArray(claims) ? claims : undefined
  } catch {
    return undefined
  }
}

const timeClaims = new Set(["iat", "nbf", "exp", "auth_time"])

const formatClaim = (key: string, value: unknown): string => {
  if (timeClaims.has(key) && typeof value === "number") {
    // a time beyond any date (the token is someone else's input) is shown as the number alone
    const date = new Date(value * 1000)
    return Number.isNaN(date.getTime()) ? String(value) : `${value} (${date.toISOString()})`
  }
  return typeof value === "string" ? value : JSON.stringify(value)
}

const inMinutes = (now: number, at: DateTime.Utc) => {
  const minutes = Math.round((at.epochMillis - now) / 60_000)
  return minutes >= 0 ? `in ${minutes} min` : `${-minutes} min ago`
}

const scopeOption = Options.text("scope").pipe(
  Options.withAlias("s"),
  Options.withDescription("The scope to ask for, e.g. https://management.azure.com/.default"),
  Options.withDefault("https://management.azure.com/.default")
)

const tenantOption = Options.text("tenant").pipe(
  Options.withAlias("t"),
  Options.withDescription("Ask for a token in this tenant"),
  Options.optional
)

const credentialOption = Options.choice("credential", credentialChoices).pipe(
  Options.withAlias("c"),
  Options.withDescription("Which credential to use; each reads its settings from the environment"),
  Options.withDefault("default" as CredentialChoice)
)

const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON"))
const showTokenOption = Options.boolean("show-token").pipe(Options.withDescription("Also print the raw token"))

const describeToken = (
  producer: string,
  scope: string,
  token: AccessToken,
  options: { readonly json: boolean; readonly showToken: boolean }
) =>
  Effect.gen(function*() {
    const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
    const claims = decodeClaims(Redacted.value(token.token))
    if (options.json) {
      return yield* Console.log(JSON.stringify(
        {
          credential: producer,
          scope,
          tokenType: token.tokenType,
          expiresOn: DateTime.formatIso(token.expiresOn),
          refreshOn: Option.getOrNull(Option.map(token.refreshOn, DateTime.formatIso)),
          claims: claims ?? null,
          ...(options.showToken ? { token: Redacted.value(token.token) } : {})
        },
        null,
        2
      ))
    }
    const lines = [
      `credential: ${producer}`,
      `scope:      ${scope}`,
      `type:       ${token.tokenType}`,
      `expires:    ${DateTime.formatIso(token.expiresOn)} (${inMinutes(now, token.expiresOn)})`,
      ...Option.match(token.refreshOn, {
        onNone: () => [],
        onSome: (r) => [`refresh:    ${DateTime.formatIso(r)} (${inMinutes(now, r)})`]
      }),
      claims === undefined ? "claims:     (the token is not a JWT)" : "claims:",
      ...Object.entries(claims ?? {}).map(([k, v]) => `  ${k}: ${formatClaim(k, v)}`),
      ...(options.showToken ? [`token:      ${Redacted.value(token.token)}`] : [])
    ]
    yield* Console.log(lines.join("\n"))
  })

/** `token`: gets a token and prints who produced it, its expiry and its claims. @internal */
export const tokenCommand = Command.make(
  "token",
  {
    scope: scopeOption,
    tenant: tenantOption,
    credential: credentialOption,
    json: jsonOption,
    showToken: showTokenOption
  },
  (args) =>
    Effect.gen(function*() {
      const producer = { name: "" }
      const token = yield* TokenCredential.getToken(args.scope, {
        ...(Option.isSome(args.tenant) ? { tenantId: args.tenant.value } : {})
      }).pipe(
        noteChainWinner(DefaultAzureCredential.name),
        Effect.provide(credentialLayer(args.credential)),
        Effect.provideService(Producer, producer),
        Effect.catchIf(isIdentityError, reportIdentityError)
      )
      const name = args.credential === "default"
        ? `${DefaultAzureCredential.name} → ${producer.name === "" ? "(link not known)" : producer.name}`
        : producer.name
      yield* describeToken(name, args.scope, token, args)
    })
).pipe(Command.withDescription("Get an access token, like `az account get-access-token`, and show its claims"))

const verdict = (error: LinkError | undefined) =>
  error === undefined
    ? "available"
    : error._tag === "CredentialUnavailableError"
    ? "unavailable"
    : error._tag === "AuthenticationRequiredError"
    ? "needs sign-in"
    : "failed"

const watchedVariables = [
  "AZURE_AUTHORITY_HOST",
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "AZURE_CLIENT_CERTIFICATE_PATH",
  "AZURE_FEDERATED_TOKEN_FILE",
  "AZURE_USERNAME",
  "AZURE_TOKEN_CREDENTIALS",
  "IDENTITY_ENDPOINT",
  "IDENTITY_HEADER",
  "MSI_ENDPOINT",
  "MSI_SECRET",
  "IMDS_ENDPOINT",
  "AZURE_POD_IDENTITY_AUTHORITY_HOST"
]

const secretVariables = new Set(["AZURE_CLIENT_SECRET", "IDENTITY_HEADER", "MSI_SECRET"])

/** `doctor`: tries each link of `DefaultAzureCredential` and says whether it can get a token, and why not. @internal */
export const doctorCommand = Command.make(
  "doctor",
  { scope: scopeOption, json: jsonOption },
  (args) =>
    Effect.gen(function*() {
      const results: Array<{ name: string; status: string; reason: string; millis: number }> = []
      for (const member of DefaultAzureCredential.members) {
        const start = yield* Effect.clockWith((c) => c.currentTimeMillis)
        const outcome = yield* Effect.either(
          TokenCredential.getToken(args.scope).pipe(Effect.provide(defaultChainMember(member)))
        )
        const end = yield* Effect.clockWith((c) => c.currentTimeMillis)
        // the chain of one member fails with a ChainedAuthenticationError holding that member's error
        const errors: ReadonlyArray<LinkError> = outcome._tag === "Right"
          ? []
          : outcome.left._tag === "ChainedAuthenticationError"
          ? outcome.left.errors
          : [outcome.left]
        const error = outcome._tag === "Left"
          ? errors[0] ?? new CredentialUnavailableError({ credential: member, reason: outcome.left.message })
          : undefined
        results.push({
          name: member,
          status: verdict(error),
          reason: outcome._tag === "Right"
            ? `got a token (expires ${DateTime.formatIso(outcome.right.expiresOn)})`
            : errors.length === 0
            ? outcome.left.message
            : errors.map((e) => e.reason).join("; "),
          millis: end - start
        })
      }
      const decisive = results.find((r) => r.status === "available" || r.status === "failed")
      const summary = decisive === undefined
        ? `${DefaultAzureCredential.name} would fail: no link could get a token. Configure one of the links above.`
        : decisive.status === "available"
        ? `${DefaultAzureCredential.name} would use ${decisive.name}.`
        : `${DefaultAzureCredential.name} would stop at ${decisive.name}, which is configured but failed: fix it or ` +
          `remove its configuration.`
      if (args.json) {
        yield* Console.log(JSON.stringify({ scope: args.scope, links: results, summary }, null, 2))
      } else {
        const env = watchedVariables.map((name) => {
          const value = process.env[name]
          return `  ${name}: ${value === undefined || value === "" ? "-" : secretVariables.has(name) ? "(set)" : value}`
        })
        const width = Math.max(...results.map((r) => r.name.length))
        yield* Console.log(
          [
            `scope: ${args.scope}`,
            "environment:",
            ...env,
            `${DefaultAzureCredential.name}, link by link:`,
            ...results.map((r, i) =>
              `  ${i + 1}. ${r.name.padEnd(width)}  ${r.status.padEnd(13)} ${
                String(r.millis).padStart(5)
              } ms  ${r.reason}`
            ),
            summary
          ].join("\n")
        )
      }
      if (decisive?.status !== "available") return yield* new Reported({ exitCode: 1 })
    })
).pipe(
  Command.withDescription("Try each link of DefaultAzureCredential and show whether it can get a token, and why not")
)

/** `emulator`: runs the identity emulator until interrupted and prints the `export` lines that point at it. @internal */
export const emulatorCommand = Command.make(
  "emulator",
  {
    port: Options.integer("port").pipe(Options.withAlias("p"), Options.withDefault(0)),
    scenario: Options.choice("scenario", IdentityEmulator.scenarios).pipe(Options.withDefault("all" as const)),
    tlsCert: Options.file("tls-cert").pipe(Options.optional),
    tlsKey: Options.file("tls-key").pipe(Options.optional),
    autoApprove: Options.boolean("auto-approve-device-codes")
  },
  (args) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const read = (file: string) =>
        fs.readFileString(file).pipe(
          Effect.tapError(() => Console.error(`error: cannot read ${file}`)),
          Effect.mapError(() => new Reported({ exitCode: 1 }))
        )
      if (Option.isSome(args.tlsCert) !== Option.isSome(args.tlsKey)) {
        // serving http when https was asked for would be a silent downgrade
        yield* Console.error("error: give both --tls-cert and --tls-key to serve https, or neither")
        return yield* new Reported({ exitCode: 1 })
      }
      const tls = Option.isSome(args.tlsCert) && Option.isSome(args.tlsKey)
        ? { cert: yield* read(args.tlsCert.value), key: yield* read(args.tlsKey.value) }
        : undefined
      const emulator = yield* IdentityEmulator.make({
        port: args.port,
        tls,
        autoApproveDeviceCodes: args.autoApprove
      }).pipe(
        Effect.catchTag("EmulatorError", (e) =>
          Effect.zipRight(Console.error(`error: ${e.message}`), Effect.fail(new Reported({ exitCode: 1 }))))
      )
      yield* Console.log(
        [
          `# identity emulator on ${emulator.url} (tenant ${emulator.tenantId}); Ctrl-C stops it`,
          `# user ${emulator.username} / ${
            Redacted.value(emulator.password)
          }; device codes: POST ${emulator.endpoints.deviceLogin}`,
          ...IdentityEmulator.exportLines(emulator.envFor(args.scenario))
        ].join("\n")
      )
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("Run the local identity emulator and print the export lines to point a program at it"))

/** @internal */
export const rootCommand = Command.make("effect-azure-identity").pipe(
  Command.withDescription("Microsoft Entra ID tokens from the command line, and a local identity emulator"),
  Command.withSubcommands([tokenCommand, doctorCommand, emulatorCommand])
)

/** @internal */
export const cli = Command.run(rootCommand, { name: "effect-azure-identity", version: libraryVersion })

/**
 * Runs the CLI on `argv` (`process.argv` form) and returns the exit code. Expected failures have been printed.
 *
 * @internal
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<number, never, NodeServices | NodeContext.NodeContext> =>
  cli(argv).pipe(
    Effect.as(0),
    Effect.catchAllCause((cause) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error = failure.value
        if (error instanceof Reported) return Effect.succeed(error.exitCode)
        // @effect/cli has already printed validation errors with the help text
        if (ValidationError.isValidationError(error)) return Effect.succeed(2)
      }
      if (Cause.isInterruptedOnly(cause)) return Effect.succeed(130)
      return Effect.as(Console.error(`unexpected error (a bug): ${Cause.pretty(cause)}`), 70)
    })
  )

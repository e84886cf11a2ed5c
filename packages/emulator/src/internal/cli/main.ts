/**
 * The `effect-azure-identity` command line: `token`, `doctor` and `emulator`.
 *
 * This module holds only the command definitions: each handler loads its own module (the credentials, the emulator)
 * when it runs, so `--help` and `--version` load neither.
 *
 * Expected failures (every `IdentityError`, a bad option) print their message to stderr and exit 1 (2 for a bad
 * option), never a stack trace. Tokens are printed only with `--show-token`. Output carries no ANSI escapes when the
 * stream is not a terminal or `NO_COLOR` is set.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Terminal from "@effect/platform/Terminal"
import * as AuthorityHost from "effect-azure-identity/AuthorityHost"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import { stripVTControlCharacters } from "node:util"
import { version as libraryVersion } from "../version.js"
import type { CredentialChoice, ScenarioChoice } from "./choices.js"
import { credentialChoices, defaultScope, scenarioChoices } from "./choices.js"
import type { NodeServices } from "./credentials.js"
import { Reported } from "./reported.js"

export { Reported } from "./reported.js"

const badValue = (message: string) => ValidationError.invalidValue(HelpDoc.p(`error: ${message}`))

/**
 * A choice among `choices` that, given anything else, names the option, the value and the choices (the built-in
 * `Options.choice` names only the choices).
 */
const choiceOption = <const C extends ReadonlyArray<string>>(name: string, choices: C) =>
  Options.text(name).pipe(
    Options.withPseudoName(choices.join("|")),
    Options.mapEffect((value) =>
      (choices as ReadonlyArray<string>).includes(value)
        ? Effect.succeed(value as C[number])
        : Effect.fail(badValue(`--${name}: ${JSON.stringify(value)} is not one of ${choices.join(", ")}`))
    )
  )

const scopeOption = Options.text("scope").pipe(
  Options.withAlias("s"),
  Options.withDescription(`The scope to ask for, e.g. ${defaultScope}`),
  Options.withDefault(defaultScope),
  // checked before any credential runs: an invalid scope is reported as such, not as "no credential"
  Options.mapEffect((scope) =>
    Either.match(AuthorityHost.validateScopes(scope), {
      onLeft: (error) => Effect.fail(badValue(`--scope: ${error.reason}`)),
      onRight: () => Effect.succeed(scope)
    })
  )
)

const tenantOption = Options.text("tenant").pipe(
  Options.withAlias("t"),
  Options.withDescription("Ask for a token in this tenant"),
  Options.optional
)

const credentialOption = choiceOption("credential", credentialChoices).pipe(
  Options.withAlias("c"),
  Options.withDescription("Which credential to use; each reads its settings from the environment"),
  Options.withDefault<CredentialChoice>("default")
)

const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON"))
const showTokenOption = Options.boolean("show-token").pipe(Options.withDescription("Also print the raw token"))

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
  (args) => Effect.flatMap(Effect.promise(() => import("./token.js")), (m) => m.token(args))
).pipe(Command.withDescription("Get an access token, like `az account get-access-token`, and show its claims"))

/** `doctor`: tries each link of `DefaultAzureCredential` and says whether it can get a token, and why not. @internal */
export const doctorCommand = Command.make(
  "doctor",
  { scope: scopeOption, json: jsonOption },
  (args) => Effect.flatMap(Effect.promise(() => import("./doctor.js")), (m) => m.doctor(args))
).pipe(
  Command.withDescription("Try each link of DefaultAzureCredential and show whether it can get a token, and why not")
)

/** `emulator`: runs the identity emulator until interrupted and prints the `export` lines that point at it. @internal */
export const emulatorCommand = Command.make(
  "emulator",
  {
    port: Options.integer("port").pipe(Options.withAlias("p"), Options.withDefault(0)),
    scenario: choiceOption("scenario", scenarioChoices).pipe(
      Options.withDescription("Which variables to export"),
      Options.withDefault<ScenarioChoice>("all")
    ),
    tlsCert: Options.file("tls-cert").pipe(Options.optional),
    tlsKey: Options.file("tls-key").pipe(Options.optional),
    autoApprove: Options.boolean("auto-approve-device-codes"),
    exportsFile: Options.text("exports-file").pipe(
      Options.withDescription(
        "Once the emulator is ready, write the export lines to this file (atomically: it appears only complete); " +
          "removed when the emulator stops"
      ),
      Options.optional
    ),
    pidFile: Options.text("pid-file").pipe(
      Options.withDescription("Write the emulator's process id to this file (`kill $(cat FILE)` stops it)"),
      Options.optional
    )
  },
  (args) => Effect.flatMap(Effect.promise(() => import("./emulator.js")), (m) => m.emulator(args))
).pipe(Command.withDescription("Run the local identity emulator and print the export lines to point a program at it"))

/** @internal */
export const rootCommand = Command.make("effect-azure-identity").pipe(
  Command.withDescription("Microsoft Entra ID tokens from the command line, and a local identity emulator"),
  Command.withSubcommands([tokenCommand, doctorCommand, emulatorCommand])
)

/** @internal */
export const cli = Command.run(rootCommand, { name: "effect-azure-identity", version: libraryVersion })

/** `NO_COLOR` (https://no-color.org), read through `Config` like every other setting; unset reads as "". */
const noColor: Effect.Effect<string> = Config.string("NO_COLOR").pipe(
  Config.withDefault(""),
  Effect.orElseSucceed(() => "")
)

/**
 * Whether a stream may carry colours: a terminal, and `NO_COLOR` (`noColorValue`) unset or empty.
 *
 * @internal
 */
export const colours = (stream: { readonly isTTY?: boolean | undefined }, noColorValue: string): boolean =>
  stream.isTTY === true && noColorValue === ""

const plain = (args: ReadonlyArray<unknown>) =>
  args.map((a) => (typeof a === "string" ? stripVTControlCharacters(a) : a))

/**
 * The current console with ANSI escapes removed from what goes to a stream that may not carry colours: `@effect/cli`
 * renders help and its errors with escapes and has no setting for it.
 */
const withPlainOutput = (noColorValue: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const out = colours(process.stdout, noColorValue)
  const err = colours(process.stderr, noColorValue)
  if (out && err) return self
  return Effect.flatMap(Effect.console, (base) => {
    const toOut = (f: (...args: ReadonlyArray<unknown>) => void) => (...args: ReadonlyArray<unknown>) =>
      f(...(out ? args : plain(args)))
    const toErr = (f: (...args: ReadonlyArray<unknown>) => void) => (...args: ReadonlyArray<unknown>) =>
      f(...(err ? args : plain(args)))
    const console: Console.Console = {
      ...base,
      log: (...args) => base.log(...(out ? args : plain(args))),
      info: (...args) => base.info(...(out ? args : plain(args))),
      error: (...args) => base.error(...(err ? args : plain(args))),
      warn: (...args) => base.warn(...(err ? args : plain(args))),
      unsafe: {
        ...base.unsafe,
        log: toOut(base.unsafe.log),
        info: toOut(base.unsafe.info),
        error: toErr(base.unsafe.error),
        warn: toErr(base.unsafe.warn)
      }
    }
    return Effect.withConsole(self, console)
  })
}

/**
 * Runs the CLI on `argv` (`process.argv` form) and returns the exit code. Expected failures have been printed.
 *
 * @internal
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<number, never, NodeServices | FileSystem.FileSystem | Path.Path | Terminal.Terminal> =>
  Effect.flatMap(noColor, (noColorValue) => runWith(argv, noColorValue))

const runWith = (
  argv: ReadonlyArray<string>,
  noColorValue: string
): Effect.Effect<number, never, NodeServices | FileSystem.FileSystem | Path.Path | Terminal.Terminal> =>
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
    }),
    withPlainOutput(noColorValue),
    // logs (e.g. a credential's warning) go to stderr: stdout is the command's output, `--json` must stay parseable
    Effect.provide(Logger.replace(
      Logger.defaultLogger,
      Logger.prettyLogger({ stderr: true, colors: colours(process.stderr, noColorValue) })
    ))
  )

/**
 * `emulator`: runs the identity emulator until interrupted, prints the `export` lines that point a program at it and,
 * with `--exports-file`, writes them to a file that appears only once complete. Loaded only when the command runs.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as IdentityEmulator from "../../IdentityEmulator.js"
import type { ScenarioChoice } from "./choices.js"
import { Reported } from "./reported.js"

/** The parsed options of `emulator`. @internal */
export interface EmulatorArgs {
  readonly port: number
  readonly scenario: ScenarioChoice
  readonly tlsCert: Option.Option<string>
  readonly tlsKey: Option.Option<string>
  readonly autoApprove: boolean
  readonly exportsFile: Option.Option<string>
  readonly pidFile: Option.Option<string>
}

/**
 * The variables of a scenario. The CLI adds the test user (`AZURE_USERNAME`, `AZURE_PASSWORD`) to `all`, and the
 * `username-password` scenario: what `UsernamePasswordCredential.layerConfig()` reads.
 *
 * @internal
 */
export const scenarioEnv = (
  emulator: IdentityEmulator.Service,
  scenario: ScenarioChoice
): Record<string, string> => {
  const user = { AZURE_USERNAME: emulator.username, AZURE_PASSWORD: Redacted.value(emulator.password) }
  switch (scenario) {
    case "username-password": {
      const { AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_TENANT_ID } = emulator.envFor("environment")
      return {
        AZURE_AUTHORITY_HOST: AZURE_AUTHORITY_HOST!,
        AZURE_TENANT_ID: AZURE_TENANT_ID!,
        AZURE_CLIENT_ID: AZURE_CLIENT_ID!,
        ...user
      }
    }
    case "all":
      return { ...emulator.envFor("all"), ...user }
    default:
      return { ...emulator.envFor(scenario) }
  }
}

/**
 * Writes `content` to `file` so that readers see either no file or the whole of it: a temporary file beside it,
 * then a rename (atomic within a directory). The file is removed when the scope closes.
 */
const writeAtomically = (
  file: string,
  content: string
): Effect.Effect<void, Reported, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const temporary = `${file}.${process.pid}.tmp`
    yield* Effect.acquireRelease(
      fs.writeFileString(temporary, content, { mode: 0o600 }).pipe(Effect.zipRight(fs.rename(temporary, file))),
      () => Effect.ignore(fs.remove(file))
    ).pipe(
      Effect.tapError((e) =>
        Effect.zipRight(Effect.ignore(fs.remove(temporary)), Console.error(`error: cannot write ${file}: ${e.message}`))
      ),
      Effect.mapError(() => new Reported({ exitCode: 1 }))
    )
  })

/** Runs `emulator` until interrupted. @internal */
export const emulator = (args: EmulatorArgs): Effect.Effect<never, Reported, FileSystem.FileSystem> =>
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
    // a file left by an earlier run must not be taken for this one's
    for (const file of [args.exportsFile, args.pidFile]) {
      if (Option.isSome(file)) yield* Effect.ignore(fs.remove(file.value))
    }
    const tls = Option.isSome(args.tlsCert) && Option.isSome(args.tlsKey)
      ? { cert: yield* read(args.tlsCert.value), key: yield* read(args.tlsKey.value) }
      : undefined
    const emulator = yield* IdentityEmulator.make({
      port: args.port,
      tls,
      autoApproveDeviceCodes: args.autoApprove
    }).pipe(
      Effect.catchTag(
        "EmulatorError",
        (e) => Effect.zipRight(Console.error(`error: ${e.message}`), Effect.fail(new Reported({ exitCode: 1 })))
      )
    )
    const text = [
      `# identity emulator on ${emulator.url} (tenant ${emulator.tenantId}), process ${process.pid}: ` +
      `Ctrl-C or \`kill ${process.pid}\` stops it`,
      `# user ${emulator.username}; device codes: POST ${emulator.endpoints.deviceLogin}`,
      ...IdentityEmulator.exportLines(scenarioEnv(emulator, args.scenario))
    ].join("\n") + "\n"
    if (Option.isSome(args.pidFile)) yield* writeAtomically(args.pidFile.value, `${process.pid}\n`)
    if (Option.isSome(args.exportsFile)) yield* writeAtomically(args.exportsFile.value, text)
    yield* Console.log(text.trimEnd())
    return yield* Effect.never
  }).pipe(Effect.scoped)

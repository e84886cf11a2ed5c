/**
 * The developer-tool credentials (`az`, `azd`, PowerShell): running the tool as a child process (argv only, never a
 * shell, a fixed working directory, a timeout, output that never reaches an error message unsanitised), the
 * parsing helpers they share, and `makeCredential`, the `getToken` every one of them is built on. What differs per
 * tool (its command, arguments, environment, output parsing and error texts) stays in its own module.
 */
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as PlatformError from "@effect/platform/Error"
import type * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as AccessToken from "../AccessToken.js"
import * as AuthorityHost from "../AuthorityHost.js"
import type * as IdentityError from "../IdentityError.js"
import type { InvalidArgumentError } from "../IdentityError.js"
import { CredentialUnavailableError } from "../IdentityError.js"
import * as TokenCredential from "../TokenCredential.js"
import type { ToolOutput } from "../TokenCredential.js"
import * as Confidential from "./confidentialClient.js"
import * as Spans from "./spans.js"
import * as TokenCacheEngine from "./tokenCache.js"

/** The default time a tool may take before it is stopped and the credential reports it unavailable. @internal */
export const defaultProcessTimeout: Duration.Duration = Duration.seconds(10)

/** How long a stopped tool may take to exit before the credential stops waiting for it. @internal */
export const killGrace: Duration.Duration = Duration.seconds(2)

/** Output beyond this many bytes per stream is dropped (a token answer is a few kilobytes). @internal */
export const maxOutputBytes = 1024 * 1024

/** @internal */
export interface Platform {
  readonly windows: boolean
  /** `%SystemRoot%` on Windows, when known. */
  readonly systemRoot: string | undefined
}

/** The platform of the running process, read without importing `node:*`. @internal */
export const currentPlatform = (): Platform => {
  const proc = (globalThis as { process?: { platform?: string; env?: Record<string, string | undefined> } }).process
  const windows = proc?.platform === "win32"
  return { windows, systemRoot: windows ? (proc?.env?.SYSTEMROOT ?? proc?.env?.SystemRoot) : undefined }
}

/**
 * The working directory the tool runs in: `/bin` on POSIX, `%SystemRoot%` on Windows. A fixed system directory
 * keeps a malicious `az` in the application's directory from being picked up.
 *
 * @internal
 */
export const workingDirectory = (platform: Platform): string =>
  platform.windows ? (platform.systemRoot ?? "C:\\Windows") : "/bin"

/** @internal */
export interface RunOptions {
  readonly executable: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  readonly timeout: Duration.Duration
}

/** @internal */
export type RunFailure =
  | { readonly _tag: "NotFound" }
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "SpawnFailed"; readonly description: string }

/** Output read so far from one stream, kept to `maxOutputBytes`. */
interface Collected {
  readonly chunks: Array<Uint8Array>
  size: number
}

const collectInto = (stream: Stream.Stream<Uint8Array, PlatformError.PlatformError>, into: Collected) =>
  Stream.runForEach(stream, (bytes) =>
    Effect.sync(() => {
      if (into.size >= maxOutputBytes) return
      into.chunks.push(bytes)
      into.size += bytes.length
    }))

const textOf = (collected: Collected): string => {
  const decoder = new TextDecoder("utf-8", { fatal: false })
  return collected.chunks.map((c) => decoder.decode(c, { stream: true })).join("") + decoder.decode()
}

const describePlatformError = (error: PlatformError.PlatformError): RunFailure =>
  error._tag === "SystemError" && error.reason === "NotFound" && error.module === "Command" &&
    error.method === "spawn"
    ? { _tag: "NotFound" }
    : {
      _tag: "SpawnFailed",
      description: error._tag === "SystemError"
        ? `${error.reason} (${error.module}.${error.method})`
        : `${error._tag} (${error.module}.${error.method})`
    }

/**
 * Runs the tool: the argument vector as given (no shell), stdin closed, the working directory fixed, and the whole
 * run bounded by the timeout (measured with the fiber's `Clock`).
 *
 * - When the tool exits, what it wrote is read until its output streams end, but for at most `drainGrace`: a child
 *   it left behind holding stdout open does not hold the answer back.
 * - Afterwards — success, failure, timeout or interruption — unless the tool exited and its output ended, its
 *   process group is stopped: `SIGTERM` (the Node executor starts the tool in a process group of its own, so this
 *   reaches its children even after the tool itself exited), then, if the tool or its output is still alive after `killGrace`, `SIGKILL`. Stopping is
 *   bounded by `maxStopDuration`, and leaves no fiber behind (unless a process survives `SIGKILL`).
 *
 * @internal
 */
export const run = (
  executor: CommandExecutor.CommandExecutor,
  options: RunOptions
): Effect.Effect<ToolOutput, RunFailure> => {
  const command = Command.make(options.executable, ...options.args).pipe(
    Command.workingDirectory(options.cwd),
    Command.env(options.env),
    Command.feed("")
  )
  return Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const process = yield* restore(Scope.extend(executor.start(command), scope)).pipe(
        Effect.mapError(describePlatformError),
        Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : closeBounded(scope, exit))
      )
      const stdout: Collected = { chunks: [], size: 0 }
      const stderr: Collected = { chunks: [], size: 0 }
      // forked interruptible: a fiber forked here would inherit the mask, and could not be stopped
      const streams = yield* Effect.fork(
        Effect.interruptible(
          Effect.all([collectInto(process.stdout, stdout), collectInto(process.stderr, stderr)], {
            concurrency: "unbounded",
            discard: true
          })
        )
      )
      const wait = Effect.gen(function*() {
        const exitCode = yield* process.exitCode
        // the tool has exited: its output is complete once the streams end, which a child it left holding
        // them open would delay forever
        yield* Effect.ignore(Effect.timeout(Fiber.join(streams), drainGrace))
        return { exitCode: Number(exitCode), stdout: textOf(stdout), stderr: textOf(stderr) }
      })
      return yield* restore(
        Effect.timeoutFail(Effect.mapError(wait, describePlatformError), {
          duration: options.timeout,
          onTimeout: (): RunFailure => ({ _tag: "Timeout" })
        })
      ).pipe(
        Effect.ensuring(
          Effect.zipRight(stop(process, streams), Fiber.interrupt(streams)).pipe(
            Effect.zipRight(closeBounded(scope, Exit.void))
          )
        )
      )
    })
  ).pipe(
    // Node throws from `spawn` for some inputs (e.g. EINVAL for `.cmd` files without a shell): never a defect here
    Effect.catchAllDefect((defect) =>
      Effect.fail<RunFailure>({
        _tag: "SpawnFailed",
        description: defect instanceof Error ? `${defect.name}: ${defect.message}`.slice(0, 200) : "unknown error"
      })
    )
  )
}

/** After the tool has exited, how long its output streams may stay open before what was read is used. @internal */
export const drainGrace: Duration.Duration = Duration.millis(500)

/**
 * Stops the tool's process group unless the tool has exited and its output ended: `SIGTERM`, a wait of up to
 * `killGrace` for the tool to exit and its output to end (a child may hold it open), then, if either is still alive,
 * `SIGKILL` and another wait of up to `killGrace`. Never fails.
 */
const stop = (
  process: CommandExecutor.Process,
  streams: Fiber.Fiber<void, PlatformError.PlatformError>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    // `kill` signals the group (else the process), then waits for the tool to exit; this runs as a finalizer, so
    // the wait is made interruptible for the timeout to cut it
    const signal = (name: CommandExecutor.Signal) =>
      Effect.ignore(
        Effect.timeout(
          Effect.interruptible(Effect.zipRight(Effect.ignore(process.kill(name)), Fiber.await(streams))),
          killGrace
        )
      )
    const settled = Effect.gen(function*() {
      const running = yield* Effect.orElseSucceed(process.isRunning, () => false)
      return !running && Option.isSome(yield* Fiber.poll(streams))
    })
    // exited, and nothing holds its output: nothing to stop (and no `taskkill` spawned on Windows)
    if (yield* settled) return
    yield* signal("SIGTERM")
    if (!(yield* settled)) yield* signal("SIGKILL")
  })

/** The longest a run takes to stop its tool after the timeout or an interruption. @internal */
export const maxStopDuration: Duration.Duration = Duration.times(killGrace, 3)

/** Closes the executor's scope without waiting on a process that ignores every signal. */
const closeBounded = (scope: Scope.CloseableScope, exit: Exit.Exit<unknown, unknown>) =>
  Effect.ignore(Effect.timeout(Effect.interruptible(Effect.disconnect(Scope.close(scope, exit))), killGrace))

/** Scopes as a non-empty list, each checked against the command-line-safe character set. @internal */
export const validateScopes = (
  scopes: string | ReadonlyArray<string>
): Either.Either<Arr.NonEmptyReadonlyArray<string>, InvalidArgumentError> =>
  Either.flatMap(AuthorityHost.validateScopes(scopes), (list) => {
    for (const scope of list) {
      const valid = AuthorityHost.validateDevToolScope(scope)
      if (Either.isLeft(valid)) return Either.left(valid.left)
    }
    // `AuthorityHost.validateScopes` refuses an empty list
    return Either.right(list as Arr.NonEmptyReadonlyArray<string>)
  })

/**
 * The tenant for one request: the requested one when allowed, else the configured one, else none (the tool's
 * default). Both are validated before they go on a command line.
 *
 * @internal
 */
export const selectTenant = (options: {
  readonly configured: string | undefined
  readonly requested: string | undefined
  readonly additionallyAllowedTenants: ReadonlyArray<string>
}): Either.Either<string | undefined, InvalidArgumentError> => {
  const requested = options.requested?.trim() === "" ? undefined : options.requested?.trim()
  if (options.configured === undefined && requested === undefined) return Either.right(undefined)
  return AuthorityHost.resolveTenant({ ...options, requested })
}

/** A human duration for messages: `10 seconds`, `300 millis`. @internal */
export const describeDuration = (duration: Duration.Duration): string => Duration.format(duration)

/** The options every developer-tool credential takes (each public `Options` documents them for its tool). @internal */
export interface ToolOptions {
  readonly tenantId?: string | undefined
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  readonly processTimeout?: Duration.DurationInput | undefined
  readonly environment?: Readonly<Record<string, string>> | undefined
  readonly executable?: string | undefined
}

/** The executables a tool is looked up as, in order (the next is tried when one is not found). @internal */
export interface Executables {
  readonly windows: Arr.NonEmptyReadonlyArray<string>
  readonly posix: Arr.NonEmptyReadonlyArray<string>
}

/** What a developer-tool credential resolves once, when its layer is built. @internal */
export interface ToolSetup {
  readonly platform: Platform
  /** The `executable` option alone when given, else the platform's defaults. */
  readonly executables: Arr.NonEmptyReadonlyArray<string>
  readonly timeout: Duration.Duration
  readonly additionallyAllowedTenants: ReadonlyArray<string>
  /** The configured tenant, trimmed; `undefined` when none (or only blanks) was given. */
  readonly configuredTenant: string | undefined
}

/** @internal */
export const setup = (
  options: ToolOptions,
  executables: Executables
): Effect.Effect<ToolSetup, InvalidArgumentError> =>
  Effect.gen(function*() {
    const platform = currentPlatform()
    const trimmed = options.tenantId?.trim()
    const configuredTenant = trimmed === "" ? undefined : trimmed
    if (configuredTenant !== undefined) yield* AuthorityHost.validateTenantId(configuredTenant)
    return {
      platform,
      executables: options.executable !== undefined
        ? [options.executable]
        : platform.windows
        ? executables.windows
        : executables.posix,
      timeout: Duration.decode(options.processTimeout ?? defaultProcessTimeout),
      additionallyAllowedTenants: options.additionallyAllowedTenants ??
        (yield* AuthorityHost.additionallyAllowedTenantsFromConfig),
      configuredTenant
    }
  })

/** The reason code of a run failure. @internal */
export const runFailureCode = (failure: RunFailure): IdentityError.ReasonCode =>
  failure._tag === "NotFound" ? "tool-missing" : failure._tag === "Timeout" ? "timeout" : "tool-failed"

/**
 * Why a tool could not be run, as the reason its credential is unavailable: not installed (with how to install it),
 * timed out (with the command to try by hand), or not startable.
 *
 * @internal
 */
export const describeRunFailure = (
  failure: RunFailure,
  tool: {
    readonly label: string
    readonly executable: string
    readonly installHint: string
    readonly timeout: Duration.Duration
    readonly tryCommand: string
  }
): string =>
  failure._tag === "NotFound"
    ? `the ${tool.label} (${tool.executable}) was not found on PATH: ${tool.installHint}`
    : failure._tag === "Timeout"
    ? `the ${tool.label} did not answer within ${describeDuration(tool.timeout)} and was stopped. ` +
      `Check that \`${tool.tryCommand}\` works, or raise the processTimeout option`
    : `the ${tool.label} could not be started: ${failure.description}`

/** One token request to a tool, after its scopes and tenant were checked. @internal */
export interface Request {
  /** The validated scopes: exactly one for a tool that takes one scope at a time. */
  readonly scopes: Arr.NonEmptyReadonlyArray<string>
  /** The tenant to ask for; `undefined` for the tool's current one. */
  readonly tenantId: string | undefined
  /** The claims challenge, trimmed (never empty); only ever set for a tool that answers claims itself. */
  readonly claims: string | undefined
}

/** How a tool is run for one request, and how its answer is read. @internal */
export interface Invocation {
  readonly args: ReadonlyArray<string>
  /** Variables set for the tool on top of the parent's environment and the `environment` option (they win). */
  readonly env: Readonly<Record<string, string>>
  /** The command a timeout message tells the user to try by hand. */
  readonly tryCommand: string
  /** The token in the output of a finished run, or the reason there is none. */
  readonly interpret: (
    output: ToolOutput,
    nowMillis: number
  ) => Effect.Effect<Either.Either<AccessToken.AccessToken, string>>
}

/** What makes one developer-tool credential: everything else is shared. @internal */
export interface Tool {
  /** The credential's name (errors, spans, logs, metrics). */
  readonly name: string
  /** The tool as run-failure messages name it: `the ${label} was not found on PATH`, `could not be started`. */
  readonly label: string
  /** The tool as the subject of the one-scope and claims messages: `the Azure CLI`, `Azure PowerShell`. */
  readonly subject: string
  /** How to install the tool and sign in, for the not-found message. */
  readonly installHint: string
  readonly executables: Executables
  /** The token cache's partition; defaults to the name. */
  readonly cachePartition?: string | undefined
  /** Checks of options only this tool has, after the shared ones; a failure makes the credential unavailable. */
  readonly validate?: Effect.Effect<unknown, InvalidArgumentError> | undefined
  /** Whether the tool takes one scope per call (more are refused before anything runs). */
  readonly oneScopeAtATime: boolean
  /**
   * For a tool that cannot answer a claims challenge: the sign-in command that does. `getToken` with claims then
   * fails with it and runs nothing. Absent: the claims go to the tool (`Request.claims`), past the cache.
   */
  readonly claimsChallengeCommand?:
    | ((claims: string, request: { readonly scope: string; readonly tenantId: string | undefined }) => string)
    | undefined
  readonly invocation: (request: Request) => Invocation
}

/**
 * A developer-tool credential: options checked once (an invalid one makes it unavailable), then per `getToken`
 * call the scopes and the tenant validated before anything runs, a claims challenge refused with the command that
 * answers it (or passed on), the token cached per tenant and scopes, and every failure — the tool missing,
 * timing out, failing or printing no token — a `CredentialUnavailableError`. When the tool is not found under one
 * executable name, the next is tried.
 *
 * @internal
 */
export const makeCredential = (
  tool: Tool,
  options: ToolOptions
): Effect.Effect<TokenCredential.Service, never, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Confidential.orUnavailable(
    tool.name,
    Effect.gen(function*() {
      const executor = yield* CommandExecutor.CommandExecutor
      const { additionallyAllowedTenants, configuredTenant, executables, platform, timeout } = yield* setup(
        options,
        tool.executables
      )
      if (tool.validate !== undefined) yield* tool.validate
      const unavailable = (reason: string, code?: IdentityError.ReasonCode) =>
        new CredentialUnavailableError({ credential: tool.name, reason, ...(code !== undefined ? { code } : {}) })
      const invalid = Confidential.unavailableFor(tool.name)

      const cache = yield* TokenCacheEngine.make({
        partition: tool.cachePartition ?? tool.name,
        name: tool.name,
        persistent: false
      })

      const runWith = (executable: string, invocation: Invocation) =>
        Effect.either(run(executor, {
          executable,
          args: invocation.args,
          cwd: workingDirectory(platform),
          env: { ...options.environment, ...invocation.env },
          timeout
        }))

      const fetch = (request: Request) =>
        Effect.gen(function*() {
          const invocation = tool.invocation(request)
          let result = yield* runWith(executables[0], invocation)
          for (const next of executables.slice(1)) {
            if (Either.isRight(result) || result.left._tag !== "NotFound") break
            result = yield* runWith(next, invocation)
          }
          if (Either.isLeft(result)) {
            return yield* Effect.fail(unavailable(
              describeRunFailure(result.left, {
                label: tool.label,
                executable: executables.join(", then "),
                installHint: tool.installHint,
                timeout,
                tryCommand: invocation.tryCommand
              }),
              runFailureCode(result.left)
            ))
          }
          const nowMillis = yield* Clock.currentTimeMillis
          const answer = yield* invocation.interpret(result.right, nowMillis)
          return yield* Either.mapLeft(answer, (reason) => unavailable(reason))
        })

      return TokenCredential.make(tool.name, (scopes, getTokenOptions) =>
        Effect.gen(function*() {
          const list = yield* Either.mapLeft(validateScopes(scopes), invalid)
          if (tool.oneScopeAtATime && list.length !== 1) {
            return yield* Effect.fail(
              unavailable(`${tool.subject} gets a token for one scope at a time, but ${list.length} were given`)
            )
          }
          const tenantId = yield* Either.mapLeft(
            selectTenant({
              configured: configuredTenant,
              requested: getTokenOptions?.tenantId,
              additionallyAllowedTenants
            }),
            invalid
          )
          const trimmed = getTokenOptions?.claims?.trim()
          const claims = trimmed === "" ? undefined : trimmed
          if (claims !== undefined && tool.claimsChallengeCommand !== undefined) {
            return yield* Effect.fail(
              unavailable(
                `${tool.subject} cannot answer a claims challenge by itself. Sign in again with: ` +
                  tool.claimsChallengeCommand(claims, { scope: list[0], tenantId })
              )
            )
          }
          const enableCae = getTokenOptions?.enableCae === true
          return yield* cache.get(
            TokenCacheEngine.cacheKey(tenantId ?? "", list, enableCae),
            fetch({ scopes: list, tenantId, claims }),
            claims !== undefined
          )
        }).pipe(
          Effect.withSpan(`${tool.name}.getToken`, { attributes: Spans.attributes(tool.name, scopes) })
        ))
    })
  ).pipe(Effect.annotateLogs("module", tool.name))

// the output helpers the public `interpret` functions use live with the credentials' front, loaded at import
export { localZone, parseLocalDateTime, parseRfc3339, sanitize, validateSubscription } from "./developerToolFront.js"

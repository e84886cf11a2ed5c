/**
 * A mock `CommandExecutor` that records every command (executable, argv, cwd, env, stdin) and answers from a
 * handler: an output, a process that never ends until it is signalled (to exercise timeouts under `TestClock`), or
 * a spawn error.
 */
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as PlatformError from "@effect/platform/Error"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"

export interface RecordedCommand {
  readonly executable: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string | undefined
  readonly env: Readonly<Record<string, string>>
  readonly extendEnv: boolean
  readonly shell: boolean | string
  /** What was written to stdin (once the process was started). */
  stdin: string | undefined
  /** True when the process was still running when it was signalled or its scope closed (it was stopped). */
  killed: boolean
  /** The signals sent to the process (a hanging process exits on the first). */
  readonly signals: Array<string>
}

export type Reply =
  | { readonly _tag: "output"; readonly exitCode?: number; readonly stdout?: string; readonly stderr?: string }
  | { readonly _tag: "hang" }
  | { readonly _tag: "spawnError"; readonly error: PlatformError.PlatformError }
  | { readonly _tag: "throws"; readonly error: Error }

export const output = (stdout: string, options: { exitCode?: number; stderr?: string } = {}): Reply => ({
  _tag: "output",
  stdout,
  ...options
})

export const failure = (exitCode: number, stderr: string, stdout = ""): Reply => ({
  _tag: "output",
  exitCode,
  stderr,
  stdout
})

export const hang: Reply = { _tag: "hang" }

export const notFound: Reply = {
  _tag: "spawnError",
  error: new PlatformError.SystemError({
    reason: "NotFound",
    module: "Command",
    method: "spawn",
    pathOrDescriptor: "az account get-access-token"
  })
}

/** What Node's `spawn` does for a `.cmd` file without a shell: it throws. */
export const spawnThrows: Reply = {
  _tag: "throws",
  error: Object.assign(new Error("spawn EINVAL"), { code: "EINVAL" })
}

export const permissionDenied: Reply = {
  _tag: "spawnError",
  error: new PlatformError.SystemError({ reason: "PermissionDenied", module: "Command", method: "spawn" })
}

const encode = (text: string) => new TextEncoder().encode(text)

export const mockExecutor = (handler: (command: RecordedCommand, index: number) => Reply) => {
  const commands: Array<RecordedCommand> = []
  const executor = CommandExecutor.makeExecutor((command) =>
    Effect.gen(function*() {
      const [standard] = Command.flatten(command)
      const recorded: RecordedCommand = {
        executable: standard.command,
        args: standard.args,
        cwd: Option.getOrUndefined(standard.cwd),
        env: Object.fromEntries(HashMap.toEntries(standard.env)),
        extendEnv: standard.extendEnv,
        shell: standard.shell,
        stdin: undefined,
        killed: false,
        signals: []
      }
      const index = commands.length
      commands.push(recorded)
      const reply = handler(recorded, index)
      if (reply._tag === "spawnError") return yield* Effect.fail(reply.error)
      if (reply._tag === "throws") return yield* Effect.die(reply.error)
      const exited = yield* Deferred.make<number>()
      if (reply._tag === "output") yield* Deferred.succeed(exited, reply.exitCode ?? 0)
      yield* Effect.addFinalizer(() =>
        Effect.flatMap(Deferred.isDone(exited), (done) =>
          Effect.sync(() => {
            if (!done) recorded.killed = true
          }))
      )
      if (typeof standard.stdin !== "string") {
        const bytes = yield* Stream.runCollect(standard.stdin as Stream.Stream<Uint8Array>)
        recorded.stdin = Chunk.toReadonlyArray(bytes).map((b) => new TextDecoder().decode(b)).join("")
      }
      const stream = (text: string | undefined): Stream.Stream<Uint8Array, PlatformError.PlatformError> =>
        reply._tag === "hang"
          ? Stream.execute(Deferred.await(exited))
          : text === undefined || text === ""
          ? Stream.empty
          : Stream.make(encode(text))
      return {
        [CommandExecutor.ProcessTypeId]: CommandExecutor.ProcessTypeId,
        pid: CommandExecutor.ProcessId(1000 + index),
        exitCode: Effect.map(Deferred.await(exited), CommandExecutor.ExitCode),
        isRunning: Effect.negate(Deferred.isDone(exited)),
        kill: (signal = "SIGTERM") =>
          Effect.gen(function*() {
            recorded.signals.push(signal)
            if (!(yield* Deferred.isDone(exited))) recorded.killed = true
            yield* Deferred.succeed(exited, 128 + 15)
          }),
        stdin: Sink.drain,
        stdout: stream(reply._tag === "output" ? reply.stdout : undefined),
        stderr: stream(reply._tag === "output" ? reply.stderr : undefined),
        toJSON: () => ({ pid: 1000 + index }),
        toString: () => `Process(${1000 + index})`,
        [Symbol.for("nodejs.util.inspect.custom")]: () => `Process(${1000 + index})`
      } as unknown as CommandExecutor.Process
    })
  )
  return {
    commands,
    executor,
    layer: Layer.succeed(CommandExecutor.CommandExecutor, executor)
  }
}

/** An executor for tests where no process may be started: any command is a defect. */
export const dieExecutor: Layer.Layer<CommandExecutor.CommandExecutor> = Layer.succeed(
  CommandExecutor.CommandExecutor,
  CommandExecutor.makeExecutor((command) =>
    Effect.dieMessage(`unexpected command: ${Command.flatten(command)[0].command}`)
  )
)

import * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as List from "effect/List"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as TokenCredential from "../../src/TokenCredential.js"
import type { Answer, MockHttp, Recorded } from "./mockHttp.js"
import { mockHttp } from "./mockHttp.js"

/** 2026-11-27T08:00:00Z: tests set the clock here first (TestClock starts at epoch 0). */
export const T0 = Date.UTC(2026, 10, 27, 8, 0, 0)

export const setNow = TestClock.setTime(T0)

/** Configuration from a map only: never the real environment. */
export const withEnv = (env: Record<string, string> = {}) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

export const envLayer = (env: Record<string, string> = {}) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

/** Lets forked fibers (background refreshes) run to completion without moving the clock. */
export const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow(), { discard: true })

/** Captures every log line, at every level, as text (message, cause and annotations). */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    lines.push(
      [
        logLevel.label,
        JSON.stringify(message),
        String(cause),
        JSON.stringify(Object.fromEntries([...annotations]))
      ].join(" ")
    )
  })
  const layer = Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))
  return { lines, layer }
}

export const listToArray = List.toArray

/** The token's value, unwrapped. */
export const tokenValue = (t: { readonly token: Redacted.Redacted<string> }): string => Redacted.value(t.token)

/** The typed failure of an exit; throws (failing the test) on a success, a defect or an interruption. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

/** Asserts that no secret appears in the error's message, its `String` form or its JSON form. */
export const assertNoSecret = (error: unknown, ...secrets: Array<string>): void => {
  const forms = [String((error as Error).message), String(error), JSON.stringify(error)]
  for (const secret of secrets) {
    for (const form of forms) assert.notInclude(form, secret)
  }
}

const memoryFileInfo = (size: number): FileSystem.File.Info => ({
  type: "File",
  mtime: Option.none(),
  atime: Option.none(),
  birthtime: Option.none(),
  dev: 0,
  ino: Option.none(),
  mode: 0o600,
  nlink: Option.none(),
  uid: Option.none(),
  gid: Option.none(),
  rdev: Option.none(),
  size: FileSystem.Size(size),
  blksize: Option.none(),
  blocks: Option.none()
})

/** An open file over `bytes`, for `FileSystem.open` in memory: `readAlloc` hands them out from its position. */
export const memoryFile = (bytes: Uint8Array): FileSystem.File => {
  let position = 0
  const unsupported = Effect.die("memoryFile: read-only")
  return {
    [FileSystem.FileTypeId]: FileSystem.FileTypeId,
    fd: FileSystem.FileDescriptor(-1),
    stat: Effect.sync(() => memoryFileInfo(bytes.length)),
    seek: (offset) =>
      Effect.sync(() => {
        position = Number(offset)
      }),
    sync: Effect.void,
    read: (buffer) =>
      Effect.sync(() => {
        const chunk = bytes.subarray(position, position + buffer.length)
        buffer.set(chunk)
        position += chunk.length
        return FileSystem.Size(chunk.length)
      }),
    readAlloc: (size) =>
      Effect.sync(() => {
        const chunk = bytes.slice(position, position + Number(size))
        position += chunk.length
        return chunk.length === 0 ? Option.none() : Option.some(chunk)
      }),
    truncate: () => unsupported,
    write: () => unsupported,
    writeAll: () => unsupported
  } as FileSystem.File
}

/**
 * `FileSystem.makeNoop(partial)` whose `open` (unless given) answers from the given `readFile` or `readFileString`
 * and whose `stat` says "a regular file": code that reads a file with `stat` + `open` (the bounded reads) sees the same files.
 */
export const makeFileReads = (partial: Partial<FileSystem.FileSystem>): FileSystem.FileSystem => {
  const bytesOf = (path: string): Effect.Effect<Uint8Array, PlatformError.PlatformError> =>
    partial.readFile !== undefined
      ? partial.readFile(path)
      : partial.readFileString !== undefined
      ? Effect.map(partial.readFileString(path), (text) => new TextEncoder().encode(text))
      : Effect.fail(
        new PlatformError.SystemError({
          reason: "NotFound",
          module: "FileSystem",
          method: "open",
          pathOrDescriptor: path
        })
      )
  return FileSystem.makeNoop({
    // a regular file of unknown size: whether it exists, and its content, come from `open` (read once)
    stat: () => Effect.succeed(memoryFileInfo(0)),
    open: (path) => Effect.map(bytesOf(path), memoryFile),
    ...partial
  })
}

/** `makeFileReads` as a layer. */
export const layerFileReads = (partial: Partial<FileSystem.FileSystem>): Layer.Layer<FileSystem.FileSystem> =>
  Layer.succeed(FileSystem.FileSystem, makeFileReads(partial))

/**
 * An in-memory `FileSystem` whose `readFileString` answers from `files` (path → content) and records every path it
 * reads (`readFileString`, or `open` after `stat`); a missing path is `NotFound`, the content `"<denied>"` is `PermissionDenied`.
 */
export const memoryFs = (files: Map<string, string>) => {
  const reads: Array<string> = []
  const lookup = (path: string, method: string) => {
    const content = files.get(path)
    if (content === undefined || content === "<denied>") {
      return Effect.fail(
        new PlatformError.SystemError({
          reason: content === undefined ? "NotFound" : "PermissionDenied",
          module: "FileSystem",
          method,
          pathOrDescriptor: path
        })
      )
    }
    return Effect.succeed(content)
  }
  const read = (path: string, method: string) =>
    Effect.suspend(() => {
      reads.push(path)
      return lookup(path, method)
    })
  const layer = layerFileReads({
    stat: (path) => Effect.map(lookup(path, "stat"), (text) => memoryFileInfo(new TextEncoder().encode(text).length)),
    open: (path) => Effect.map(read(path, "open"), (text) => memoryFile(new TextEncoder().encode(text))),
    readFileString: (path) => read(path, "readFileString")
  })
  return { reads, layer }
}

/**
 * The harness of credential tests: builds `credentialLayer` over a mock HTTP client answering with `handler` (plus
 * whatever `deps` provides, given the mock), sets the clock to `T0`, reads configuration from `env` only, and runs
 * `f` with the credential and the recorded requests.
 */
export const withCredentialOver = <A, E, R = never>(
  credentialLayer: Layer.Layer<TokenCredential.TokenCredential, never, R>,
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>,
  options: {
    readonly env?: Record<string, string> | undefined
    /** Everything the credential layer needs; default: the mock HTTP client. */
    readonly deps?: ((http: MockHttp) => Layer.Layer<R>) | undefined
  } = {}
): Effect.Effect<A, E> => {
  const http = mockHttp(handler)
  const deps = options.deps === undefined ? (http.layer as Layer.Layer<any>) : options.deps(http)
  return Effect.gen(function*() {
    yield* setNow
    const credential = yield* TokenCredential.TokenCredential
    return yield* f(credential, http.requests)
  }).pipe(
    Effect.provide(Layer.provide(credentialLayer, deps)),
    withEnv(options.env ?? {})
  )
}

/**
 * `node` arguments for child processes started by tests: the tsx loader and the same network guard as the test
 * workers, so a child can reach only loopback too.
 */
export const guardedNodeArgs: ReadonlyArray<string> = [
  "--import",
  "tsx",
  "--import",
  new URL("./networkGuard.ts", import.meta.url).pathname
]

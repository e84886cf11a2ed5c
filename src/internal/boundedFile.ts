/**
 * Reading a small file a credential depends on (a federated token, a certificate, the MSAL cache, an Azure Arc key)
 * through `FileSystem`, safely: the path is `stat`ed first and anything but a regular file is refused (a FIFO would
 * block the read forever, `/dev/zero` would never end), a file larger than the cap for its kind is refused, and the
 * read itself stops one byte past the cap, so a file that grows between the `stat` and the read is refused too
 * rather than read whole.
 */
import type * as PlatformError from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const KiB = 1024
const MiB = 1024 * KiB

/** The size caps per kind of file. @internal */
export const limits = {
  /** A projected service account token or a pipeline's OIDC token: a few kilobytes. */
  tokenFile: MiB,
  /** A PEM certificate with its key and chain. */
  pem: MiB,
  /** The MSAL unified cache: every account and token of every tool that shares it. */
  msalCache: 32 * MiB,
  /** The Azure Arc challenge key: a few dozen bytes. */
  arcKey: 4 * KiB
} as const

/** Why a file was not read. `detail` never holds the file's content. @internal */
export class BoundedFileError extends Schema.TaggedError<BoundedFileError>()("BoundedFileError", {
  path: Schema.String,
  problem: Schema.Literal("NotFound", "PermissionDenied", "NotAFile", "TooLarge", "Unreadable"),
  detail: Schema.String
}) {
  /** A short reason, for a message such as `the X <path> could not be read (<reason>)`. */
  get reason(): string {
    switch (this.problem) {
      case "NotFound":
        return "it does not exist"
      case "PermissionDenied":
        return "permission denied"
      case "NotAFile":
        return `it is a ${this.detail}, not a regular file: point the setting at the file itself`
      case "TooLarge":
        return `it is larger than ${this.detail}, far more than such a file holds: check that the path names the ` +
          "right file"
      case "Unreadable":
        return this.detail
    }
  }

  override get message(): string {
    return `${this.path} could not be read (${this.reason})`
  }
}

const describeSize = (bytes: number) => bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`

const kindOf = (type: FileSystem.File.Type): string =>
  ({
    Directory: "directory",
    SymbolicLink: "symbolic link",
    BlockDevice: "block device",
    CharacterDevice: "character device",
    FIFO: "named pipe (FIFO)",
    Socket: "socket",
    File: "file",
    Unknown: "special file"
  })[type] ?? "special file"

const fromPlatform = (path: string) => (error: PlatformError.PlatformError): BoundedFileError =>
  new BoundedFileError({
    path,
    problem: error._tag === "SystemError" && error.reason === "NotFound"
      ? "NotFound"
      : error._tag === "SystemError" && error.reason === "PermissionDenied"
      ? "PermissionDenied"
      : "Unreadable",
    detail: error._tag === "SystemError" ? error.reason : "invalid path"
  })

const chunkBytes = 64 * KiB

/**
 * The bytes of the regular file at `path`, at most `maxBytes` of them; a larger file, or anything but a regular
 * file, is a `BoundedFileError`.
 *
 * @internal
 */
export const readBytes = (
  fs: FileSystem.FileSystem,
  path: string,
  maxBytes: number
): Effect.Effect<Uint8Array, BoundedFileError> =>
  Effect.gen(function*() {
    const toError = fromPlatform(path)
    const notAFile = (type: FileSystem.File.Type) =>
      new BoundedFileError({ path, problem: "NotAFile", detail: kindOf(type) })
    const tooLarge = new BoundedFileError({ path, problem: "TooLarge", detail: describeSize(maxBytes) })
    // stat follows symbolic links: a link to a regular file (a Kubernetes projected volume) is a regular file
    const info = yield* Effect.mapError(fs.stat(path), toError)
    if (info.type !== "File") return yield* Effect.fail(notAFile(info.type))
    if (Number(info.size) > maxBytes) return yield* Effect.fail(tooLarge)
    return yield* Effect.scoped(Effect.gen(function*() {
      const file = yield* Effect.mapError(fs.open(path, { flag: "r" }), toError)
      // the path may have been replaced between the stat and the open
      const opened = yield* Effect.mapError(file.stat, toError)
      if (opened.type !== "File") return yield* Effect.fail(notAFile(opened.type))
      const chunks: Array<Uint8Array> = []
      let total = 0
      for (;;) {
        // one byte past the cap tells a file that grew since the stat from one that is exactly at the cap
        const chunk = yield* Effect.mapError(file.readAlloc(Math.min(chunkBytes, maxBytes + 1 - total)), toError)
        if (Option.isNone(chunk) || chunk.value.length === 0) break
        total += chunk.value.length
        if (total > maxBytes) return yield* Effect.fail(tooLarge)
        chunks.push(chunk.value)
      }
      const bytes = new Uint8Array(total)
      let offset = 0
      for (const chunk of chunks) {
        bytes.set(chunk, offset)
        offset += chunk.length
      }
      return bytes
    }))
  })

/**
 * The text (UTF-8) of the regular file at `path`, at most `maxBytes` long; see `readBytes`.
 *
 * @internal
 */
export const readText = (
  fs: FileSystem.FileSystem,
  path: string,
  maxBytes: number
): Effect.Effect<string, BoundedFileError> =>
  Effect.map(readBytes(fs, path, maxBytes), (bytes) => new TextDecoder().decode(bytes))

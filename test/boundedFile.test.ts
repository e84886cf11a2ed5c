/**
 * Files a credential reads (federated token, certificate, MSAL cache, Azure Arc key) are read through one bounded
 * reader: real temporary files, a named pipe (FIFO) nobody writes to, a character device (`/dev/zero`), a directory,
 * and files over the cap. Nothing hangs, nothing is read past the cap, every refusal is a typed error.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import {
  CertificateCredential,
  SharedTokenCacheCredential,
  TokenCredential,
  WorkloadIdentityCredential
} from "../src/index.js"
import * as BoundedFile from "../src/internal/boundedFile.js"
import { failureOf, withEnv } from "./support/helpers.js"
import { dieHttp } from "./support/mockHttp.js"

const SCOPE = "https://vault.azure.net/.default"
const MiB = 1024 * 1024

/** A temporary directory (removed with the scope) holding a FIFO, a file of `size` bytes and an empty directory. */
const fixtures = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped()
  const fifo = `${dir}/pipe`
  // a named pipe with no writer: opening it for reading blocks until someone opens it for writing
  execFileSync("mkfifo", [fifo])
  yield* fs.makeDirectory(`${dir}/directory`)
  const sized = (name: string, size: number) =>
    Effect.as(fs.writeFile(`${dir}/${name}`, new Uint8Array(size).fill(0x41)), `${dir}/${name}`)
  return { fs, dir, fifo, directory: `${dir}/directory`, sized }
}).pipe(Effect.orDie)

const credentialOver = (layer: Layer.Layer<TokenCredential.TokenCredential, never, any>) =>
  Effect.map(
    Layer.build(layer.pipe(Layer.provide(Layer.merge(dieHttp, NodeFileSystem.layer)))),
    (ctx) => Context.get(ctx, TokenCredential.TokenCredential)
  )

const reasonOf = (credential: TokenCredential.Service) =>
  Effect.gen(function*() {
    const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
    assert.strictEqual(error._tag, "CredentialUnavailableError")
    return error.message
  })

describe("bounded file reads", () => {
  it.scoped("the reader: a regular file up to the cap is read whole; more, or anything else, is refused", () =>
    Effect.gen(function*() {
      const { directory, fifo, fs, sized } = yield* fixtures
      const exact = yield* sized("exact", 4096)
      assert.strictEqual((yield* BoundedFile.readBytes(fs, exact, 4096)).length, 4096)
      const over = yield* Effect.either(BoundedFile.readBytes(fs, yield* sized("over", 4097), 4096))
      assert.isTrue(Either.isLeft(over) && over.left.problem === "TooLarge")
      const cases = [
        [fifo, "NotAFile", "named pipe (FIFO)"],
        ["/dev/zero", "NotAFile", "character device"],
        [directory, "NotAFile", "directory"],
        [`${directory}/missing`, "NotFound", ""]
      ] as const
      for (const [path, problem, detail] of cases) {
        const result = yield* Effect.either(BoundedFile.readBytes(fs, path, MiB))
        if (Either.isRight(result)) throw new Error(`${path} was read`)
        assert.strictEqual(result.left._tag, "BoundedFileError")
        assert.strictEqual(result.left.problem, problem)
        if (detail !== "") assert.include(result.left.message, `it is a ${detail}, not a regular file`)
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a file that grows past the cap between the stat and the read is refused, not read whole", () =>
    Effect.gen(function*() {
      const { fs, sized } = yield* fixtures
      const path = yield* sized("grows", 100)
      // the stat says 100 bytes; the open file then holds 10 KiB
      const growing: FileSystem.FileSystem = {
        ...fs,
        open: (p, options) =>
          Effect.zipRight(Effect.orDie(fs.writeFile(p, new Uint8Array(10 * 1024))), fs.open(p, options))
      }
      const result = yield* Effect.either(BoundedFile.readBytes(growing, path, 4096))
      assert.isTrue(Either.isLeft(result) && result.left.problem === "TooLarge")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("WorkloadIdentityCredential: the federated token file as a FIFO, /dev/zero, 2 MiB → unavailable", () =>
    Effect.gen(function*() {
      const { fifo, sized } = yield* fixtures
      const big = yield* sized("token", 2 * MiB)
      for (const [path, expected] of [[fifo, "named pipe"], ["/dev/zero", "character device"], [big, "1 MiB"]]) {
        const credential = yield* credentialOver(
          WorkloadIdentityCredential.layer({ tenantId: "t", clientId: "c", tokenFilePath: path })
        )
        const message = yield* reasonOf(credential)
        assert.include(message, `the federated token file ${path} could not be read`)
        assert.include(message, expected!)
      }
    }).pipe(Effect.provide(NodeFileSystem.layer), withEnv({})))

  it.scoped("CertificateCredential: the PEM file as a FIFO, /dev/zero, 2 MiB → unavailable", () =>
    Effect.gen(function*() {
      const { fifo, sized } = yield* fixtures
      const big = yield* sized("cert.pem", 2 * MiB)
      for (const [path, expected] of [[fifo, "named pipe"], ["/dev/zero", "character device"], [big, "1 MiB"]]) {
        const credential = yield* credentialOver(
          CertificateCredential.layer({ tenantId: "t", clientId: "c", certificatePath: path! })
        )
        const message = yield* reasonOf(credential)
        assert.include(message, `the certificate file ${path} could not be read`)
        assert.include(message, expected!)
      }
    }).pipe(Effect.provide(NodeFileSystem.layer), withEnv({})))

  it.scoped("SharedTokenCacheCredential: the cache as a FIFO, /dev/zero, 33 MiB → unavailable", () =>
    Effect.gen(function*() {
      const { fifo, sized } = yield* fixtures
      const big = yield* sized("msal.cache", 33 * MiB)
      for (const [path, expected] of [[fifo, "named pipe"], ["/dev/zero", "character device"], [big, "32 MiB"]]) {
        const credential = yield* credentialOver(
          SharedTokenCacheCredential.layer({ cachePath: path! }).pipe(
            Layer.provide(Layer.succeed(SharedTokenCacheCredential.Platform, "linux"))
          )
        )
        const message = yield* reasonOf(credential)
        assert.include(message, `the shared token cache ${path}`)
        assert.include(message, expected!)
      }
    }).pipe(Effect.provide(NodeFileSystem.layer), withEnv({ HOME: "/nonexistent-home" })))
})

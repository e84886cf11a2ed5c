import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { AccessToken, ClientSecretCredential, TokenCache, TokenCredential } from "../src/index.js"
import * as store from "../src/internal/tokenStore.js"
import { captureLogs, setNow, settle, T0, withEnv } from "./support/helpers.js"
import { json, mockHttp, tokenBody } from "./support/mockHttp.js"

const SECRET = "cache-test-secret-value"
const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const SCOPE = "https://vault.azure.net/.default"
const AUTHORITY = "https://login.example.test"
const KEY = Redacted.make(Buffer.alloc(32, 7).toString("base64"))

const FsLive = Layer.merge(NodeFileSystem.layer, NodePath.layer)

/** A backend, built once per test: `persists` = a second credential layer over it sees the first one's tokens. */
interface Backend {
  readonly name: string
  readonly persists: boolean
  /** Builds the service (fresh store); `undefined` = no TokenCache at all (the default memory cache per layer). */
  readonly make: Effect.Effect<TokenCache.Service | undefined, never, Scope.Scope>
}

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped()).pipe(
  Effect.provide(FsLive),
  Effect.orDie
)

const overDirectory = (dir: string, options: TokenCache.KeyValueStoreOptions) =>
  TokenCache.makeKeyValueStore(options).pipe(
    Effect.provide(KeyValueStore.layerFileSystem(dir).pipe(Layer.provide(FsLive))),
    Effect.orDie
  )

const backends: ReadonlyArray<Backend> = [
  { name: "memory (default, per layer)", persists: false, make: Effect.succeed(undefined) },
  { name: "memory (shared, layerMemory)", persists: true, make: TokenCache.makeMemory },
  {
    name: "key-value store (memory store, plaintext opt-in)",
    persists: true,
    make: TokenCache.makeKeyValueStore({ allowUnencrypted: true }).pipe(Effect.provide(KeyValueStore.layerMemory))
  },
  {
    name: "key-value store (file system, AES-256-GCM)",
    persists: true,
    make: Effect.flatMap(tempDir, (dir) => overDirectory(dir, { encryptionKey: KEY }))
  }
]

const credentialLayer = (service: TokenCache.Service | undefined, http: ReturnType<typeof mockHttp>) => {
  const base = ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: CLIENT,
    clientSecret: Redacted.make(SECRET),
    authorityHost: AUTHORITY
  }).pipe(Layer.provide(http.layer))
  return service === undefined ? base : base.pipe(Layer.provide(Layer.succeed(TokenCache.TokenCache, service)))
}

/** Builds a credential over `service` in the current scope. */
const credentialOver = (service: TokenCache.Service | undefined, http: ReturnType<typeof mockHttp>) =>
  Effect.map(
    Layer.build(credentialLayer(service, http)),
    (ctx) => ctx.unsafeMap.get(TokenCredential.TokenCredential.key) as TokenCredential.Service
  )

/** Signals every completed save, so a test can wait for a background refresh that does real I/O. */
const instrument = (service: TokenCache.Service | undefined) =>
  Effect.gen(function*() {
    const saved = yield* Queue.unbounded<void>()
    if (service === undefined) return { service, awaitSave: settle }
    const wrapped: TokenCache.Service = {
      load: service.load,
      save: (key, token) => Effect.zipRight(service.save(key, token), Queue.offer(saved, undefined))
    }
    return { service: wrapped, awaitSave: Effect.zipRight(Queue.take(saved), settle) }
  })

const value = (t: AccessToken.AccessToken) => Redacted.value(t.token)

const counter = () => {
  let n = 0
  return mockHttp(() => json(200, tokenBody(`tok-${++n}`, 3600)))
}

const suite = (backend: Backend) =>
  describe(backend.name, () => {
    it.scoped("caches a token: one request for repeated calls", () =>
      Effect.gen(function*() {
        yield* setNow
        const service = yield* backend.make
        const http = counter()
        const credential = yield* credentialOver(service, http)
        assert.strictEqual(value(yield* credential.getToken(SCOPE)), "tok-1")
        assert.strictEqual(value(yield* credential.getToken(SCOPE)), "tok-1")
        assert.strictEqual(http.requests.length, 1)
      }).pipe(withEnv()))

    it.scoped("keeps tenants, scopes and the CAE flag apart", () =>
      Effect.gen(function*() {
        yield* setNow
        const service = yield* backend.make
        const http = counter()
        const credential = yield* credentialOver(service, http)
        yield* credential.getToken(SCOPE)
        yield* credential.getToken("https://graph.microsoft.com/.default")
        yield* credential.getToken(SCOPE, { enableCae: true })
        assert.strictEqual(http.requests.length, 3)
        assert.strictEqual(value(yield* credential.getToken(SCOPE, { enableCae: true })), "tok-3")
        assert.strictEqual(http.requests.length, 3)
      }).pipe(withEnv()))

    it.scoped("a claims challenge bypasses the cache, and its token is served afterwards", () =>
      Effect.gen(function*() {
        yield* setNow
        const service = yield* backend.make
        const http = counter()
        const credential = yield* credentialOver(service, http)
        yield* credential.getToken(SCOPE)
        const challenged = yield* credential.getToken(SCOPE, { claims: "{\"access_token\":{}}" })
        assert.strictEqual(value(challenged), "tok-2")
        assert.strictEqual(value(yield* credential.getToken(SCOPE)), "tok-2")
        assert.strictEqual(http.requests.length, 2)
      }).pipe(withEnv()))

    it.scoped("refreshes in the background in the refresh window, and waits once the token is expired", () =>
      Effect.gen(function*() {
        yield* setNow
        const { awaitSave, service } = yield* instrument(yield* backend.make)
        const http = counter()
        const credential = yield* credentialOver(service, http)
        yield* credential.getToken(SCOPE)
        if (service !== undefined) yield* awaitSave
        yield* TestClock.adjust("56 minutes")
        assert.strictEqual(value(yield* credential.getToken(SCOPE)), "tok-1")
        yield* awaitSave
        assert.strictEqual(http.requests.length, 2)
        assert.strictEqual(value(yield* credential.getToken(SCOPE)), "tok-2")
        yield* TestClock.adjust("2 hours")
        assert.strictEqual(value(yield* credential.getToken(SCOPE)), "tok-3")
        assert.strictEqual(http.requests.length, 3)
      }).pipe(withEnv()))

    it.scoped(
      backend.persists
        ? "a second credential layer over the same cache gets the token without a request"
        : "a second credential layer has its own memory and sends its own request",
      () =>
        Effect.gen(function*() {
          yield* setNow
          const service = yield* backend.make
          const first = counter()
          yield* (yield* credentialOver(service, first)).getToken(SCOPE)
          const second = counter()
          const token = yield* (yield* credentialOver(service, second)).getToken(SCOPE)
          assert.strictEqual(value(token), "tok-1")
          assert.strictEqual(second.requests.length, backend.persists ? 0 : 1)
        }).pipe(withEnv())
    )

    it.scoped("an expired persisted token is not served", () =>
      Effect.gen(function*() {
        yield* setNow
        const service = yield* backend.make
        yield* (yield* credentialOver(service, counter())).getToken(SCOPE)
        yield* TestClock.adjust("61 minutes")
        const second = mockHttp(() => json(200, tokenBody("new", 3600)))
        assert.strictEqual(value(yield* (yield* credentialOver(service, second)).getToken(SCOPE)), "new")
        assert.strictEqual(second.requests.length, 1)
      }).pipe(withEnv()))
  })

describe("TokenCache backends (one suite, every backend)", () => {
  for (const backend of backends) suite(backend)
})

const readDir = (dir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = yield* fs.readDirectory(dir)
    const files: Array<{ name: string; bytes: Uint8Array }> = []
    for (const name of names) files.push({ name, bytes: yield* fs.readFile(`${dir}/${name}`) })
    return files
  }).pipe(Effect.provide(FsLive), Effect.orDie)

describe("TokenCache.layerKeyValueStore on disk", () => {
  it.scoped("two processes over one directory: the second reuses the first one's token across a restart", () =>
    Effect.gen(function*() {
      yield* setNow
      const dir = yield* tempDir
      const first = counter()
      yield* Effect.scoped(
        Effect.flatMap(
          overDirectory(dir, { encryptionKey: KEY }),
          (service) => Effect.flatMap(credentialOver(service, first), (c) => c.getToken(SCOPE))
        )
      )
      // a new store instance (as in a new process) over the same directory
      const second = counter()
      const service = yield* overDirectory(dir, { encryptionKey: KEY })
      const token = yield* (yield* credentialOver(service, second)).getToken(SCOPE)
      assert.strictEqual(value(token), "tok-1")
      assert.strictEqual(first.requests.length, 1)
      assert.strictEqual(second.requests.length, 0)
    }).pipe(withEnv()))

  it.scoped("with encryption on, no file holds the token, the scope or the tenant in clear text", () =>
    Effect.gen(function*() {
      yield* setNow
      const dir = yield* tempDir
      const service = yield* overDirectory(dir, { encryptionKey: KEY })
      const http = mockHttp(() => json(200, tokenBody("eyJ.very-secret-access-token.sig", 3600)))
      yield* (yield* credentialOver(service, http)).getToken(SCOPE)
      const files = yield* readDir(dir)
      assert.strictEqual(files.length, 1)
      const text = Buffer.from(files[0]!.bytes).toString("latin1")
      for (const needle of ["very-secret-access-token", "eyJ", SCOPE, "vault", TENANT, CLIENT]) {
        assert.notInclude(text, needle)
        assert.notInclude(files[0]!.name, needle)
      }
      assert.match(files[0]!.name, /^effect-azure-identity-token-[0-9a-f]{64}$/)
      assert.include(text, "A256GCM")
    }).pipe(withEnv()))

  it.scoped("with plaintext opted in, the entry is readable JSON with epoch milliseconds", () =>
    Effect.gen(function*() {
      yield* setNow
      const dir = yield* tempDir
      const service = yield* overDirectory(dir, { allowUnencrypted: true })
      yield* (yield* credentialOver(service, counter())).getToken(SCOPE)
      const files = yield* readDir(dir)
      const parsed = JSON.parse(Buffer.from(files[0]!.bytes).toString("utf8"))
      assert.strictEqual(parsed.alg, "none")
      assert.strictEqual(parsed.entry.token, "tok-1")
      assert.strictEqual(parsed.entry.expiresOn, T0 + 3600_000)
    }).pipe(withEnv()))

  it.scoped("another key, plaintext entries under a key, and corrupt entries are misses, never errors", () =>
    Effect.gen(function*() {
      yield* setNow
      const dir = yield* tempDir
      yield* (yield* credentialOver(yield* overDirectory(dir, { allowUnencrypted: true }), counter())).getToken(SCOPE)
      // plaintext entry, reader has a key: refused as a miss
      const keyed = mockHttp(() => json(200, tokenBody("keyed", 3600)))
      const otherKey = Redacted.make("ab".repeat(32))
      yield* (yield* credentialOver(yield* overDirectory(dir, { encryptionKey: otherKey }), keyed)).getToken(SCOPE)
      assert.strictEqual(keyed.requests.length, 1)
      // encrypted with otherKey, read with KEY: a miss
      const wrong = mockHttp(() => json(200, tokenBody("wrong-key", 3600)))
      yield* (yield* credentialOver(yield* overDirectory(dir, { encryptionKey: KEY }), wrong)).getToken(SCOPE)
      assert.strictEqual(wrong.requests.length, 1)
      // encrypted entry, plaintext reader: a miss
      const plain = mockHttp(() => json(200, tokenBody("plain", 3600)))
      yield* (yield* credentialOver(yield* overDirectory(dir, { allowUnencrypted: true }), plain)).getToken(SCOPE)
      assert.strictEqual(plain.requests.length, 1)
      // truncate the file: a miss
      const fs = yield* Effect.provide(FileSystem.FileSystem, FsLive)
      const [file] = yield* readDir(dir)
      yield* Effect.orDie(fs.writeFileString(`${dir}/${file!.name}`, "{\"v\":1,\"alg\":\"no"))
      const corrupt = mockHttp(() => json(200, tokenBody("after-corrupt", 3600)))
      const token = yield* (yield* credentialOver(yield* overDirectory(dir, { allowUnencrypted: true }), corrupt))
        .getToken(SCOPE)
      assert.strictEqual(value(token), "after-corrupt")
    }).pipe(withEnv()))
})

describe("TokenCache.layerKeyValueStore refusals and failures", () => {
  const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    return Option.getOrThrow(Cause.failureOption(exit.cause))
  }

  it.scoped("without a key or the plaintext opt-in, getToken fails (typed) before any request", () =>
    Effect.gen(function*() {
      yield* setNow
      const http = counter()
      const credential = yield* Layer.build(
        credentialLayer(undefined, http).pipe(
          Layer.provide(TokenCache.layerKeyValueStore()),
          Layer.provide(KeyValueStore.layerMemory)
        )
      ).pipe(Effect.map((ctx) => ctx.unsafeMap.get(TokenCredential.TokenCredential.key) as TokenCredential.Service))
      const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "ClientSecretCredential is unavailable: the persistent token cache refuses")
      assert.include(error.message, "encryptionKey")
      assert.include(error.message, "allowUnencrypted")
      assert.strictEqual(http.requests.length, 0)
      // a claims challenge (write only) is refused too
      const bypass = failureOf(yield* Effect.exit(credential.getToken(SCOPE, { claims: "{}" })))
      assert.strictEqual(bypass._tag, "CredentialUnavailableError")
    }).pipe(withEnv()))

  it.effect("a key of the wrong size is refused with a message that never shows the key", () =>
    Effect.gen(function*() {
      const shortKey = "c2hvcnQta2V5LXZhbHVlLXNlY3JldA=="
      const service = yield* TokenCache.makeKeyValueStore({ encryptionKey: Redacted.make(shortKey) }).pipe(
        Effect.provide(KeyValueStore.layerMemory)
      )
      const error = failureOf(yield* Effect.exit(service.load("k")))
      assert.strictEqual(error._tag, "TokenCacheError")
      assert.include(error.message, "32 bytes")
      for (const form of [error.message, String(error), JSON.stringify(error)]) assert.notInclude(form, shortKey)
      const hexKey = yield* TokenCache.makeKeyValueStore({ encryptionKey: Redacted.make("zz".repeat(32)) }).pipe(
        Effect.provide(KeyValueStore.layerMemory)
      )
      assert.isTrue(Exit.isFailure(
        yield* Effect.exit(hexKey.save(
          "k",
          AccessToken.make({
            token: "t",
            obtainedAtMillis: 0,
            expiresOnMillis: 1
          })
        ))
      ))
    }))

  it.effect("accepts hex, base64url and raw-byte keys; generateKey makes a usable one", () =>
    Effect.gen(function*() {
      yield* setNow
      const generated = yield* TokenCache.generateKey
      assert.strictEqual(String(generated), "<redacted>")
      const keys = [
        generated,
        Redacted.make("0123456789abcdef".repeat(4)),
        Redacted.make(Buffer.alloc(32, 250).toString("base64url")),
        Redacted.make(new Uint8Array(32).fill(3))
      ]
      for (const encryptionKey of keys) {
        const service = yield* TokenCache.makeKeyValueStore({ encryptionKey }).pipe(
          Effect.provide(KeyValueStore.layerMemory)
        )
        const token = AccessToken.make({ token: "tok", obtainedAtMillis: T0, expiresOnMillis: T0 + 3600_000 })
        yield* service.save("key", token)
        const loaded = yield* service.load("key")
        assert.isTrue(Option.isSome(loaded))
        assert.strictEqual(Redacted.value(Option.getOrThrow(loaded).token), "tok")
      }
    }))

  it.effect("store read and write errors are logged (without the token) and count as misses", () =>
    Effect.gen(function*() {
      yield* setNow
      const logs = captureLogs()
      const failing = KeyValueStore.makeStringOnly({
        get: () =>
          Effect.fail(new PlatformError.SystemError({ module: "KeyValueStore", method: "get", reason: "Unknown" })),
        set: () =>
          Effect.fail(new PlatformError.SystemError({ module: "KeyValueStore", method: "set", reason: "Unknown" })),
        remove: () => Effect.void,
        clear: Effect.void,
        size: Effect.succeed(0)
      })
      const service = yield* TokenCache.makeKeyValueStore({ encryptionKey: KEY }).pipe(
        Effect.provideService(KeyValueStore.KeyValueStore, failing)
      )
      const token = AccessToken.make({ token: "logged-token-value", obtainedAtMillis: T0, expiresOnMillis: T0 + 1 })
      yield* service.save("k", token).pipe(Effect.provide(logs.layer))
      const loaded = yield* service.load("k").pipe(Effect.provide(logs.layer))
      assert.isTrue(Option.isNone(loaded))
      assert.strictEqual(logs.lines.length, 2)
      assert.include(logs.lines.join("\n"), "could not write an entry")
      assert.include(logs.lines.join("\n"), "could not read an entry")
      assert.notInclude(logs.lines.join("\n"), "logged-token-value")
    }))

  it.effect("layerMemory drops expired entries", () =>
    Effect.gen(function*() {
      yield* setNow
      const service = yield* TokenCache.makeMemory
      yield* service.save("k", AccessToken.make({ token: "x", obtainedAtMillis: T0, expiresOnMillis: T0 + 1000 }))
      assert.isTrue(Option.isSome(yield* service.load("k")))
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* service.load("k")))
      assert.isTrue(Option.isNone(yield* service.load("never-saved")))
    }))
})

describe("stored entries", () => {
  it.effect.prop(
    "survive a JSON round trip (epoch milliseconds), encrypted or not",
    [
      FastCheck.string({ minLength: 1, maxLength: 200 }),
      FastCheck.integer({ min: 1, max: 4_000_000_000_000 }),
      FastCheck.option(FastCheck.integer({ min: 0, max: 4_000_000_000_000 }), { nil: null }),
      FastCheck.constantFrom("Bearer", "pop"),
      FastCheck.string({ minLength: 1, maxLength: 100 })
    ],
    ([token, expiresOn, refreshOn, tokenType, key]) =>
      Effect.sync(() => {
        const original: AccessToken.AccessToken = {
          token: Redacted.make(token),
          tokenType,
          expiresOn: DateTime.unsafeMake(expiresOn),
          refreshOn: refreshOn === null ? Option.none() : Option.some(DateTime.unsafeMake(refreshOn))
        }
        const stored = JSON.parse(JSON.stringify(store.toStored(key, original)))
        const back = store.fromStored(stored)
        assert.strictEqual(Redacted.value(back.token), token)
        assert.strictEqual(back.tokenType, tokenType)
        assert.strictEqual(DateTime.toEpochMillis(back.expiresOn), expiresOn)
        assert.deepStrictEqual(Option.map(back.refreshOn, DateTime.toEpochMillis), Option.fromNullable(refreshOn))
        const aes = Buffer.alloc(32, 1)
        const decoded = store.decode(aes, key, store.encrypt(aes, store.toStored(key, original)))
        assert.deepStrictEqual(Either.getOrThrow(decoded), store.toStored(key, original))
        // bound to its cache key
        assert.strictEqual(store.decode(aes, `${key}x`, store.encrypt(aes, store.toStored(key, original)))._tag, "Left")
      })
  )
})

describe("stored entries: review fixes", () => {
  it.effect("a plaintext entry with times no date can hold is a miss, not a defect", () =>
    Effect.gen(function*() {
      yield* setNow
      const kv = yield* KeyValueStore.KeyValueStore
      const key = "k"
      for (const [expiresOn, refreshOn] of [[9e15, null], [T0 + 3600_000, -9e15]] as const) {
        yield* Effect.orDie(kv.set(
          store.storeKey("p-", key),
          JSON.stringify({ v: 1, alg: "none", entry: { key, token: "t", tokenType: "Bearer", expiresOn, refreshOn } })
        ))
        const loaded = yield* store.load(kv, { _tag: "plaintext" }, "p-", key)
        assert.isTrue(Option.isNone(loaded))
      }
    }).pipe(Effect.provide(KeyValueStore.layerMemory)))
})

describe("stored entries: authentication tag", () => {
  it("an encrypted entry whose GCM tag was truncated is refused (the full 16-byte tag is required)", () => {
    const aes = Buffer.alloc(32, 7)
    const key = "ClientSecretCredential|https://login.example|app|tenant|scope|nocae"
    const stored = store.toStored(
      key,
      AccessToken.make({ token: "tag-test-token", obtainedAtMillis: 0, expiresOnMillis: 3_600_000 })
    )
    const envelope = JSON.parse(store.encrypt(aes, stored))
    assert.isTrue(Either.isRight(store.decode(aes, key, JSON.stringify(envelope))))
    const truncated = { ...envelope, tag: Buffer.from(envelope.tag, "base64").subarray(0, 4).toString("base64") }
    const decoded = store.decode(aes, key, JSON.stringify(truncated))
    assert.deepStrictEqual(decoded, Either.left("undecryptable"))
  })
})

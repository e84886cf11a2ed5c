import type * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import type { AccessToken } from "../AccessToken.js"
import { lazy } from "./lazy.js"

/** A token as JSON: epoch milliseconds (any a `Date` can hold), so it survives any JSON round trip. */
const storedToken = () => {
  const EpochMillis = Schema.Number.pipe(Schema.int(), Schema.between(-8_640_000_000_000_000, 8_640_000_000_000_000))
  return Schema.Struct({
    key: Schema.String,
    token: Schema.String.pipe(Schema.minLength(1)),
    tokenType: Schema.String,
    expiresOn: EpochMillis,
    refreshOn: Schema.NullOr(EpochMillis)
  })
}

/** @internal */
export type StoredToken = ReturnType<typeof storedToken>["Type"]

/** The decoders, built on first use (see `lazy.ts`). */
const decoders = lazy(() => {
  const StoredToken = storedToken()
  // what is written to the store: an AES-256-GCM envelope, or (opt-in only) the token in plaintext
  const Envelope = Schema.Union(
    Schema.Struct({
      v: Schema.Literal(1),
      alg: Schema.Literal("A256GCM"),
      iv: Schema.String,
      tag: Schema.String,
      data: Schema.String
    }),
    Schema.Struct({
      v: Schema.Literal(1),
      alg: Schema.Literal("none"),
      entry: StoredToken
    })
  )
  return {
    envelope: Schema.decodeUnknownEither(Schema.parseJson(Envelope)),
    stored: Schema.decodeUnknownEither(Schema.parseJson(StoredToken))
  }
})

/** @internal */
export const toStored = (key: string, token: AccessToken): StoredToken => ({
  key,
  token: Redacted.value(token.token),
  tokenType: token.tokenType,
  expiresOn: DateTime.toEpochMillis(token.expiresOn),
  refreshOn: Option.isSome(token.refreshOn) ? DateTime.toEpochMillis(token.refreshOn.value) : null
})

/** @internal */
export const fromStored = (stored: StoredToken): AccessToken => ({
  token: Redacted.make(stored.token),
  tokenType: stored.tokenType,
  expiresOn: DateTime.unsafeMake(stored.expiresOn),
  refreshOn: stored.refreshOn === null ? Option.none() : Option.some(DateTime.unsafeMake(stored.refreshOn))
})

/**
 * A 256-bit key from 64 hex digits or base64 / base64url (43–44 characters). The description never contains the key.
 *
 * @internal
 */
export const parseKey = (
  key: Redacted.Redacted<string> | Redacted.Redacted<Uint8Array>
): Either.Either<Buffer, string> => {
  const value: string | Uint8Array = Redacted.value(key as Redacted.Redacted<string | Uint8Array>)
  let bytes: Buffer
  if (typeof value !== "string") {
    bytes = Buffer.from(value)
  } else {
    const trimmed = value.trim()
    bytes = /^[0-9a-fA-F]{64}$/.test(trimmed)
      ? Buffer.from(trimmed, "hex")
      : /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)
      ? Buffer.from(trimmed.replace(/-/g, "+").replace(/_/g, "/"), "base64")
      : Buffer.alloc(0)
  }
  return bytes.length === 32 ? Either.right(bytes) : Either.left(
    `the encryption key must be 32 bytes (AES-256), given as 64 hex digits or base64, got ${bytes.length} ` +
      `usable bytes: create one with TokenCache.generateKey and keep it in a secret store`
  )
}

/** @internal */
export const encrypt = (key: Buffer, stored: StoredToken): string => {
  const iv = crypto.randomBytes(12)
  const cipher = crypto.createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(Buffer.from(stored.key, "utf8"))
  const data = Buffer.concat([cipher.update(JSON.stringify(stored), "utf8"), cipher.final()])
  return JSON.stringify({
    v: 1,
    alg: "A256GCM",
    iv: iv.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    data: data.toString("base64")
  })
}

/** Why an entry was not usable. Never contains the entry. @internal */
export type Unusable = "malformed" | "undecryptable" | "plaintext-refused" | "encrypted-without-key" | "other-key"

/** @internal */
export const decode = (
  key: Buffer | undefined,
  cacheKey: string,
  text: string
): Either.Either<StoredToken, Unusable> => {
  const envelope = decoders().envelope(text)
  if (Either.isLeft(envelope)) return Either.left("malformed")
  const e = envelope.right
  if (e.alg === "none") {
    if (key !== undefined) return Either.left("plaintext-refused")
    return e.entry.key === cacheKey ? Either.right(e.entry) : Either.left("other-key")
  }
  if (key === undefined) return Either.left("encrypted-without-key")
  let plain: string
  try {
    const decipher = crypto.createDecipheriv("aes-256-gcm", key, Buffer.from(e.iv, "base64"), { authTagLength: 16 })
    decipher.setAAD(Buffer.from(cacheKey, "utf8"))
    decipher.setAuthTag(Buffer.from(e.tag, "base64"))
    plain = Buffer.concat([decipher.update(Buffer.from(e.data, "base64")), decipher.final()]).toString("utf8")
  } catch {
    return Either.left("undecryptable")
  }
  const stored = decoders().stored(plain)
  if (Either.isLeft(stored)) return Either.left("malformed")
  return stored.right.key === cacheKey ? Either.right(stored.right) : Either.left("other-key")
}

/** The store key of a cache key: a SHA-256, so it is a short, safe file name that reveals nothing. @internal */
export const storeKey = (prefix: string, cacheKey: string): string =>
  `${prefix}${crypto.createHash("sha256").update(cacheKey, "utf8").digest("hex")}`

/** @internal */
export const generateKey = (): Redacted.Redacted<string> => Redacted.make(crypto.randomBytes(32).toString("base64"))

/** @internal */
export type Mode =
  | { readonly _tag: "encrypted"; readonly key: Buffer }
  | { readonly _tag: "plaintext" }
  | { readonly _tag: "refused"; readonly reason: string }

/** @internal */
export const describeUnusable = (reason: Unusable): string => {
  switch (reason) {
    case "malformed":
      return "the entry is not a token cache entry (truncated or written by something else)"
    case "undecryptable":
      return "the entry could not be decrypted (written with another key, or tampered with)"
    case "plaintext-refused":
      return "the entry is in plaintext but an encryption key is configured"
    case "encrypted-without-key":
      return "the entry is encrypted but no encryption key is configured"
    case "other-key":
      return "the entry belongs to another cache key"
  }
}

/**
 * How entries are written, from the options of a persistent cache: encrypted with a valid key, plaintext only on an
 * explicit opt-in, otherwise refused with a reason that says what to do.
 *
 * @internal
 */
export const modeOf = (options: {
  readonly encryptionKey?: Redacted.Redacted<string> | Redacted.Redacted<Uint8Array> | undefined
  readonly allowUnencrypted?: boolean | undefined
}): Mode => {
  if (options.encryptionKey !== undefined) {
    const key = parseKey(options.encryptionKey)
    return Either.isRight(key) ? { _tag: "encrypted", key: key.right } : { _tag: "refused", reason: key.left }
  }
  if (options.allowUnencrypted === true) return { _tag: "plaintext" }
  return {
    _tag: "refused",
    reason: "no encryptionKey was given and plaintext storage was not allowed: pass encryptionKey (a 256-bit " +
      "key, see TokenCache.generateKey) or, for a store already protected like a secret, allowUnencrypted: true"
  }
}

/** The stored text of a token: an AES-256-GCM envelope, or (opt-in) plaintext JSON. @internal */
export const encode = (mode: Exclude<Mode, { _tag: "refused" }>, cacheKey: string, token: AccessToken): string => {
  const stored = toStored(cacheKey, token)
  return mode._tag === "encrypted" ? encrypt(mode.key, stored) : JSON.stringify({ v: 1, alg: "none", entry: stored })
}

/** A stored text read back: a token still valid at `now`, or a miss (logged at debug level when unusable). @internal */
export const parse = (
  mode: Exclude<Mode, { _tag: "refused" }>,
  cacheKey: string,
  text: string
): Effect.Effect<Option.Option<AccessToken>> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const decoded = decode(mode._tag === "encrypted" ? mode.key : undefined, cacheKey, text)
    if (Either.isLeft(decoded)) {
      return Effect.as(
        Effect.logDebug(`persistent token cache: ignoring an entry: ${describeUnusable(decoded.left)}`),
        Option.none()
      )
    }
    return Effect.succeed(decoded.right.expiresOn <= now ? Option.none() : Option.some(fromStored(decoded.right)))
  })

/** Loads an entry: a missing, unusable or expired entry is a miss; store errors are logged as misses. @internal */
export const load = (
  store: KeyValueStore.KeyValueStore,
  mode: Exclude<Mode, { _tag: "refused" }>,
  prefix: string,
  cacheKey: string
): Effect.Effect<Option.Option<AccessToken>> =>
  store.get(storeKey(prefix, cacheKey)).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(Option.none<AccessToken>()),
      onSome: (text) => parse(mode, cacheKey, text)
    })),
    Effect.catchAll((error) =>
      Effect.as(
        Effect.logWarning(`persistent token cache: could not read an entry (${error.message}); treating it as a miss`),
        Option.none()
      )
    )
  )

/** Saves an entry; store errors are logged, never raised (the token in hand is still good). @internal */
export const save = (
  store: KeyValueStore.KeyValueStore,
  mode: Exclude<Mode, { _tag: "refused" }>,
  prefix: string,
  cacheKey: string,
  token: AccessToken
): Effect.Effect<void> =>
  store.set(storeKey(prefix, cacheKey), encode(mode, cacheKey, token)).pipe(
    Effect.catchAll((error) =>
      Effect.logWarning(`persistent token cache: could not write an entry (${error.message}); continuing without it`)
    )
  )

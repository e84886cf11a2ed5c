/**
 * The MSAL unified token cache (the JSON shared by MSAL .NET, Python, Java and JavaScript): decoding, account
 * selection, and a lock-guarded, merge-preserving write-back.
 */
import type * as PlatformError from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AccessToken from "../AccessToken.js"
import * as AuthorityHost from "../AuthorityHost.js"
import type { LockOptions } from "../SharedTokenCacheCredential.js"
import { maxEpochMillis } from "./aad.js"
import { parseRaw as parseJson } from "./http.js"
import { lazy } from "./lazy.js"
import { describeParseError } from "./safeParse.js"

/** The developer sign-on app (the Azure CLI's client id), a member of the family of client ids. @internal */
export { developerSignOnClientId } from "../SharedTokenCacheCredential.js"

/** The cache file's schemas (built on first use, see `lazy.ts`). */
const schemas = () => {
  // epoch seconds: MSAL writes strings, some writers numbers
  const EpochSeconds = Schema.Union(Schema.NumberFromString, Schema.Number).pipe(Schema.finite())
  const Secret = Schema.Redacted(Schema.String.pipe(Schema.minLength(1)))
  const AccountEntry = Schema.Struct({
    home_account_id: Schema.String,
    environment: Schema.String,
    realm: Schema.optional(Schema.String),
    local_account_id: Schema.optional(Schema.String),
    username: Schema.optional(Schema.String),
    authority_type: Schema.optional(Schema.String)
  })
  const RefreshTokenEntry = Schema.Struct({
    secret: Secret,
    home_account_id: Schema.String,
    environment: Schema.String,
    client_id: Schema.String,
    target: Schema.optional(Schema.String),
    family_id: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
    last_modification_time: Schema.optional(EpochSeconds)
  })
  const AccessTokenEntry = Schema.Struct({
    secret: Secret,
    home_account_id: Schema.String,
    environment: Schema.String,
    client_id: Schema.String,
    realm: Schema.String,
    target: Schema.String,
    token_type: Schema.optional(Schema.String),
    cached_at: Schema.optional(EpochSeconds),
    expires_on: EpochSeconds,
    refresh_on: Schema.optional(EpochSeconds)
  })
  const Section = Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
  // the top level: every section optional, unknown sections kept when writing back
  const CacheFile = Schema.Struct({
    AccessToken: Section,
    RefreshToken: Section,
    IdToken: Section,
    Account: Section,
    AppMetadata: Section
  })
  return { AccountEntry, RefreshTokenEntry, AccessTokenEntry, CacheFile }
}

type Schemas = ReturnType<typeof schemas>

/** @internal */
export type AccountEntry = Schemas["AccountEntry"]["Type"]

/** @internal */
export type RefreshTokenEntry = Schemas["RefreshTokenEntry"]["Type"]

/** @internal */
export type AccessTokenEntry = Schemas["AccessTokenEntry"]["Type"]

const decoders = lazy(() => {
  const s = schemas()
  return {
    file: Schema.decodeUnknownEither(s.CacheFile),
    account: Schema.decodeUnknownEither(s.AccountEntry),
    refreshToken: Schema.decodeUnknownEither(s.RefreshTokenEntry),
    accessToken: Schema.decodeUnknownEither(s.AccessTokenEntry)
  }
})

/** @internal */
export interface Decoded {
  readonly accounts: ReadonlyArray<AccountEntry>
  readonly refreshTokens: ReadonlyArray<RefreshTokenEntry>
  readonly accessTokens: ReadonlyArray<AccessTokenEntry>
  /** Entries that did not decode (skipped, like MSAL does). */
  readonly skipped: number
}

const decodeSection = <A>(
  decode: (u: unknown) => Either.Either<A, unknown>,
  section: Readonly<Record<string, unknown>> | undefined
): { entries: Array<A>; skipped: number } => {
  const entries: Array<A> = []
  let skipped = 0
  for (const value of Object.values(section ?? {})) {
    const decoded = decode(value)
    if (Either.isRight(decoded)) entries.push(decoded.right)
    else skipped++
  }
  return { entries, skipped }
}

/** Why a cache file could not be used. Never contains the file's content. @internal */
export type Problem =
  | { readonly _tag: "NotJson" }
  | { readonly _tag: "NotACache"; readonly detail: string }

/** Decodes a cache file's text. An empty file is an empty cache. @internal */
export const decodeText = (text: string): Either.Either<Decoded, Problem> => {
  const trimmed = text.replace(/^\uFEFF/, "").trim()
  if (trimmed === "") return Either.right({ accounts: [], refreshTokens: [], accessTokens: [], skipped: 0 })
  const json = parseJson(trimmed)
  if (Option.isNone(json)) return Either.left({ _tag: "NotJson" })
  if (typeof json.value !== "object" || json.value === null || Array.isArray(json.value)) {
    return Either.left({ _tag: "NotACache", detail: "the top level is not a JSON object" })
  }
  const decode = decoders()
  const file = decode.file(json.value)
  if (Either.isLeft(file)) return Either.left({ _tag: "NotACache", detail: describeParseError(file.left) })
  const accounts = decodeSection(decode.account, file.right.Account)
  const refreshTokens = decodeSection(decode.refreshToken, file.right.RefreshToken)
  const accessTokens = decodeSection(decode.accessToken, file.right.AccessToken)
  return Either.right({
    accounts: accounts.entries,
    refreshTokens: refreshTokens.entries,
    accessTokens: accessTokens.entries,
    skipped: accounts.skipped + refreshTokens.skipped + accessTokens.skipped
  })
}

/** The hosts naming the same cloud as `authorityHost` (a URL or a host); an unknown host is its own only alias. @internal */
export const environmentsOf = (authority: string): ReadonlySet<string> => {
  let host = authority.toLowerCase()
  let hostname = host
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//.test(host) ? host : `https://${host}`)
    host = url.host
    hostname = url.hostname
  } catch {
    // keep the raw value
  }
  const group = AuthorityHost.aliases.find((g) => g.includes(hostname))
  return new Set(group ?? [host, hostname])
}

const lower = (s: string | undefined) => (s ?? "").toLowerCase()

/** The tenant part of `home_account_id` (`<uid>.<utid>`). @internal */
export const homeTenantOf = (homeAccountId: string): string | undefined => {
  const dot = homeAccountId.lastIndexOf(".")
  return dot < 0 ? undefined : homeAccountId.slice(dot + 1)
}

/** A refresh token this credential may redeem: FOCI, or issued to the client id it redeems with. @internal */
export const isUsableRefreshToken = (rt: RefreshTokenEntry, clientId: string): boolean =>
  String(rt.family_id ?? "") === "1" || lower(rt.client_id) === lower(clientId)

/** @internal */
export interface Filter {
  readonly environments: ReadonlySet<string>
  readonly clientId: string
  readonly username?: string | undefined
  readonly tenantId?: string | undefined
  readonly homeAccountId?: string | undefined
}

/** @internal */
export interface Selected {
  readonly account: AccountEntry
  /** Ours first, then the most recently written. */
  readonly refreshTokens: ReadonlyArray<RefreshTokenEntry>
}

const describeAccount = (a: AccountEntry) =>
  `${a.username ?? "(no username)"} (tenant ${homeTenantOf(a.home_account_id) ?? a.realm ?? "unknown"})`

const describeFilter = (filter: Filter) =>
  [
    filter.username !== undefined ? `username: ${filter.username}` : undefined,
    filter.tenantId !== undefined ? `tenant: ${filter.tenantId}` : undefined
  ].filter((s) => s !== undefined).join(" ")

/**
 * Account selection: accounts of the authority's cloud that have a usable refresh token, one per home account;
 * then the authentication record's home account id, or the username and/or tenant filter. Exactly one must remain.
 *
 * @internal
 */
export const selectAccount = (cache: Decoded, filter: Filter): Either.Either<Selected, string> => {
  const inCloud = (environment: string) => filter.environments.has(lower(environment))
  const tokensByHome = new Map<string, Array<RefreshTokenEntry>>()
  for (const rt of cache.refreshTokens) {
    if (!inCloud(rt.environment) || rt.home_account_id === "" || !isUsableRefreshToken(rt, filter.clientId)) continue
    const key = lower(rt.home_account_id)
    tokensByHome.set(key, [...(tokensByHome.get(key) ?? []), rt])
  }
  const candidates = new Map<string, AccountEntry>()
  for (const account of cache.accounts) {
    const key = lower(account.home_account_id)
    if (!inCloud(account.environment) || !tokensByHome.has(key)) continue
    const existing = candidates.get(key)
    // prefer the entry of the home tenant, which carries the user's own username
    if (existing === undefined || lower(account.realm) === lower(homeTenantOf(account.home_account_id))) {
      candidates.set(key, account)
    }
  }
  const all = [...candidates.values()]
  const list = (accounts: ReadonlyArray<AccountEntry>) => accounts.map(describeAccount).join(", ")
  const select = (account: AccountEntry): Selected => ({
    account,
    refreshTokens: [...tokensByHome.get(lower(account.home_account_id))!].sort((a, b) => {
      const ours = Number(lower(b.client_id) === lower(filter.clientId)) -
        Number(lower(a.client_id) === lower(filter.clientId))
      return ours !== 0 ? ours : (b.last_modification_time ?? 0) - (a.last_modification_time ?? 0)
    })
  })
  if (all.length === 0) {
    const accountsWithoutTokens = cache.accounts.filter((a) => inCloud(a.environment)).length
    return Either.left(
      "No accounts were found in the cache." + (
        accountsWithoutTokens > 0
          ? ` (${accountsWithoutTokens} account entr${
            accountsWithoutTokens === 1 ? "y has" : "ies have"
          } no refresh token shared with the family of Microsoft client ids, which is all this credential can use.)`
          : ""
      ) +
        " Sign in with a developer tool that uses Azure single sign-on (for example Visual Studio), or use another " +
        "credential such as AzureCliCredential."
    )
  }
  if (filter.homeAccountId !== undefined) {
    const match = all.find((a) => a.home_account_id === filter.homeAccountId)
    return match === undefined
      ? Either.left(
        `No account matching the authentication record (home account id ${filter.homeAccountId}) was found in ` +
          `the cache. Accounts in the cache: ${list(all)}. Sign in again with the tool that created the record.`
      )
      : Either.right(select(match))
  }
  if (filter.username === undefined && filter.tenantId === undefined) {
    if (all.length === 1) return Either.right(select(all[0]!))
    return Either.left(
      `Multiple accounts were found in the cache: ${list(all)}. Use username and tenant id to disambiguate: set ` +
        `the username and tenantId options (AZURE_USERNAME and AZURE_TENANT_ID with layerConfig).`
    )
  }
  const matching = all.filter((a) =>
    (filter.username === undefined || lower(a.username) === lower(filter.username)) &&
    (filter.tenantId === undefined || lower(homeTenantOf(a.home_account_id)) === lower(filter.tenantId))
  )
  if (matching.length === 1) return Either.right(select(matching[0]!))
  if (matching.length === 0) {
    return Either.left(
      `No account matching the specified ${describeFilter(filter)} was found in the cache. Accounts in the ` +
        `cache: ${list(all)}. Change the username or tenantId option (AZURE_USERNAME, AZURE_TENANT_ID) to one of ` +
        `them, or sign in as that user with a developer tool that uses Azure single sign-on.`
    )
  }
  return Either.left(
    `Multiple accounts matching the specified ${describeFilter(filter)} were found in the cache: ${list(matching)}. ${
      filter.tenantId === undefined
        ? "Add the tenant id (the tenantId option, or AZURE_TENANT_ID) to choose one."
        : "Add the username (the username option, or AZURE_USERNAME) to choose one."
    }`
  )
}

const scopeSet = (target: string) => new Set(target.split(/\s+/).filter((s) => s !== "").map((s) => s.toLowerCase()))

/** Tenants that are not a tenant: the token comes from the user's home tenant. @internal */
export const isMultiTenantAlias = (tenantId: string): boolean =>
  ["organizations", "common", "consumers"].includes(tenantId.toLowerCase())

/** The realm a token for `tenantId` is cached under. @internal */
export const realmFor = (account: AccountEntry, tenantId: string): string =>
  isMultiTenantAlias(tenantId) ? (homeTenantOf(account.home_account_id) ?? account.realm ?? tenantId) : tenantId

/** A cached access token for the account, client, realm and scopes that needs no refresh yet. @internal */
export const findAccessToken = (
  cache: Decoded,
  options: {
    readonly account: AccountEntry
    readonly environments: ReadonlySet<string>
    readonly clientId: string
    readonly realm: string
    readonly scopes: ReadonlyArray<string>
    readonly nowMillis: number
  }
): Option.Option<AccessToken.AccessToken> => {
  const wanted = options.scopes.map((s) => s.toLowerCase())
  for (const at of cache.accessTokens) {
    if (
      lower(at.home_account_id) !== lower(options.account.home_account_id) ||
      !options.environments.has(lower(at.environment)) || lower(at.client_id) !== lower(options.clientId) ||
      lower(at.realm) !== lower(options.realm)
    ) continue
    const target = scopeSet(at.target)
    if (!wanted.every((s) => target.has(s))) continue
    const expiresOnMillis = at.expires_on * 1000
    const cachedAtMillis = at.cached_at !== undefined ? at.cached_at * 1000 : options.nowMillis
    // a cached_at in the future means the clock was turned back: don't trust the entry
    if (cachedAtMillis > options.nowMillis + 5 * 60_000) continue
    // times no date can hold (a corrupt or hostile file) make no token
    if (Math.abs(expiresOnMillis) > maxEpochMillis || Math.abs(cachedAtMillis) > maxEpochMillis) continue
    const token = AccessToken.make({
      token: at.secret,
      obtainedAtMillis: cachedAtMillis,
      expiresOnMillis,
      refreshInMillis: at.refresh_on !== undefined ? at.refresh_on * 1000 - cachedAtMillis : undefined,
      tokenType: at.token_type
    })
    const refreshOn = Option.getOrThrow(token.refreshOn)
    if (options.nowMillis < refreshOn.epochMillis && options.nowMillis < expiresOnMillis - 5 * 60_000) {
      return Option.some(token)
    }
  }
  return Option.none()
}

/** What is written back after a refresh token was redeemed. @internal */
export interface WriteBack {
  readonly account: AccountEntry
  readonly clientId: string
  readonly realm: string
  readonly target: string
  readonly accessToken: AccessToken.AccessToken
  readonly obtainedAtMillis: number
  readonly refreshToken: Option.Option<Redacted.Redacted<string>>
  readonly familyId: string | undefined
}

const seconds = (millis: number) => String(Math.floor(millis / 1000))

/**
 * Merges a redeemed token into the raw JSON of the cache file as it is now: every other entry, section and field
 * is kept as written.
 *
 * @internal
 */
export const merge = (raw: Record<string, unknown>, write: WriteBack): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...raw }
  const section = (name: string): Record<string, unknown> => {
    const existing = out[name]
    const copy = typeof existing === "object" && existing !== null && !Array.isArray(existing)
      ? { ...(existing as Record<string, unknown>) }
      : {}
    out[name] = copy
    return copy
  }
  const home = write.account.home_account_id
  const environment = write.account.environment
  const expiresOn = seconds(write.accessToken.expiresOn.epochMillis)
  const atKey = [home, environment, "accesstoken", write.clientId, write.realm, write.target].join("-").toLowerCase()
  section("AccessToken")[atKey] = {
    credential_type: "AccessToken",
    secret: Redacted.value(write.accessToken.token),
    home_account_id: home,
    environment,
    client_id: write.clientId,
    realm: write.realm,
    target: write.target,
    token_type: write.accessToken.tokenType,
    cached_at: seconds(write.obtainedAtMillis),
    expires_on: expiresOn,
    extended_expires_on: expiresOn
  }
  if (Option.isSome(write.refreshToken)) {
    const refreshTokens = section("RefreshToken")
    // replace this client's refresh token for the account under whatever key its writer used, else add one
    let rtKey = [home, environment, "refreshtoken", write.clientId, "", ""].join("-").toLowerCase()
    for (const [key, value] of Object.entries(refreshTokens)) {
      const v = value as Record<string, unknown> | null
      if (
        typeof v === "object" && v !== null && lower(String(v.home_account_id)) === lower(home) &&
        lower(String(v.client_id)) === lower(write.clientId) && lower(String(v.environment)) === lower(environment)
      ) rtKey = key
    }
    const previous = refreshTokens[rtKey]
    refreshTokens[rtKey] = {
      ...(typeof previous === "object" && previous !== null ? previous : {}),
      credential_type: "RefreshToken",
      secret: Redacted.value(write.refreshToken.value),
      home_account_id: home,
      environment,
      client_id: write.clientId,
      target: "",
      ...(write.familyId !== undefined ? { family_id: write.familyId } : {}),
      last_modification_time: seconds(write.obtainedAtMillis)
    }
  }
  return out
}

/** The raw JSON object of a cache file (empty text = empty object), to merge into. @internal */
export const parseRaw = (text: string): Option.Option<Record<string, unknown>> => {
  const trimmed = text.replace(/^\uFEFF/, "").trim()
  if (trimmed === "") return Option.some({})
  return Option.filter(
    parseJson(trimmed),
    (v): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
  )
}

/** @internal */
export const defaultLockOptions: LockOptions = { staleMillis: 10_000, timeoutMillis: 15_000, pollMillis: 50 }

/** @internal */
export class LockTimeout {
  readonly _tag = "LockTimeout"
  constructor(readonly lockPath: string, readonly waitedMillis: number) {}
}

const randomId = Effect.map(
  Effect.all(Array.from({ length: 4 }, () => Random.nextIntBetween(0, 0x10000))),
  (parts) => parts.map((n) => n.toString(16).padStart(4, "0")).join("")
)

/**
 * Runs `body` holding `<cache>.lockfile`, created exclusively; the lock is removed afterwards, only if it is still
 * ours. While another program holds it, waits (polling with `Effect.sleep`, interruptible) up to `timeoutMillis`.
 *
 * A lock older than `staleMillis` (by the time written in it, else its modification time; both compared with
 * `Clock`) was left by a crashed writer and is broken — but only by one writer at a time, and only if it is still
 * the lock that was judged stale: the breaker first creates `<cache>.lockfile.break` exclusively, reads the lock
 * again, removes it only when its content is unchanged, then removes the break file. Without this, two writers that
 * both saw the stale lock would each remove it, the second removing the first one's fresh lock, and both would
 * write (lost refresh tokens).
 *
 * @internal
 */
export const withLock = <A, E, R>(
  fs: FileSystem.FileSystem,
  lockPath: string,
  options: LockOptions,
  body: Effect.Effect<A, E, R>
): Effect.Effect<A, E | LockTimeout | PlatformError.PlatformError, R> =>
  Effect.gen(function*() {
    const id = yield* randomId
    const start = yield* Clock.currentTimeMillis
    const breakPath = `${lockPath}.break`
    let held = false
    const exclusive = (path: string, now: number) =>
      fs.writeFileString(path, JSON.stringify({ owner: id, createdAt: now, by: "effect-azure-identity" }), {
        flag: "wx",
        mode: 0o600
      }).pipe(
        Effect.as(true),
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "AlreadyExists", () => Effect.succeed(false))
      )
    /** Removes the lock if it still reads `judged` and is still stale; holding the break file. */
    const breakStale = (judged: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (!(yield* exclusive(breakPath, now))) {
          // another writer is breaking it; a break file left by a crashed breaker goes once it is stale itself
          const breakAge = yield* lockAge(fs, breakPath, now)
          if (Option.isSome(breakAge) && breakAge.value.age >= options.staleMillis) {
            yield* fs.remove(breakPath).pipe(Effect.catchAll(() => Effect.void))
          }
          return
        }
        yield* Effect.gen(function*() {
          const current = yield* lockAge(fs, lockPath, now)
          if (Option.isNone(current) || current.value.text !== judged || current.value.age < options.staleMillis) return
          yield* Effect.logWarning(
            `removing a stale token cache lock ${lockPath} (${Math.round(current.value.age / 1000)} s old)`
          )
          yield* fs.remove(lockPath).pipe(Effect.catchAll(() => Effect.void))
        }).pipe(Effect.ensuring(fs.remove(breakPath).pipe(Effect.catchAll(() => Effect.void))))
      })
    const acquire: Effect.Effect<void, LockTimeout | PlatformError.PlatformError> = Effect.gen(function*() {
      let broken = 0
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        // creating the lock and noting that it is ours happen together: an interruption cannot leave it behind
        const created = yield* Effect.uninterruptible(
          Effect.tap(exclusive(lockPath, now), (ok) =>
            Effect.sync(() => {
              if (ok) held = true
            }))
        )
        if (created) return
        const age = yield* lockAge(fs, lockPath, now)
        if (Option.isSome(age) && age.value.age >= options.staleMillis && broken < 3) {
          broken++
          yield* Effect.uninterruptible(breakStale(age.value.text))
          continue
        }
        if (now - start >= options.timeoutMillis) return yield* Effect.fail(new LockTimeout(lockPath, now - start))
        yield* Effect.sleep(Duration.millis(options.pollMillis))
      }
    })
    const release = fs.readFileString(lockPath).pipe(
      Effect.flatMap((text) => text.includes(id) ? fs.remove(lockPath) : Effect.void),
      Effect.catchAll(() => Effect.void)
    )
    return yield* Effect.zipRight(acquire, body).pipe(
      Effect.ensuring(Effect.suspend(() => held ? release : Effect.void))
    )
  })

/** A lock's text and age: its `createdAt`, else its modification time; none if it is gone. */
const lockAge = (fs: FileSystem.FileSystem, lockPath: string, now: number) =>
  Effect.gen(function*() {
    const text = yield* Effect.option(fs.readFileString(lockPath))
    if (Option.isNone(text)) return Option.none<{ readonly text: string; readonly age: number }>()
    const json = parseJson(text.value)
    const createdAt = Option.isSome(json) && typeof json.value === "object" && json.value !== null
      ? (json.value as { createdAt?: unknown }).createdAt
      : undefined
    if (typeof createdAt === "number" && Number.isFinite(createdAt)) {
      return Option.some({ text: text.value, age: now - createdAt })
    }
    const info = yield* Effect.option(fs.stat(lockPath))
    if (Option.isNone(info)) return Option.none<{ readonly text: string; readonly age: number }>()
    return Option.some({
      text: text.value,
      age: Option.match(info.value.mtime, { onNone: () => 0, onSome: (d) => now - d.getTime() })
    })
  })

/** Writes `text` to a temporary file beside `path` and renames it over `path` (atomic on one file system). @internal */
export const writeAtomically = (fs: FileSystem.FileSystem, path: string, text: string) =>
  Effect.gen(function*() {
    const tmp = `${path}.${yield* randomId}.tmp`
    yield* fs.writeFileString(tmp, text, { mode: 0o600 }).pipe(
      Effect.zipRight(fs.rename(tmp, path)),
      Effect.tapError(() => fs.remove(tmp).pipe(Effect.catchAll(() => Effect.void)))
    )
  })

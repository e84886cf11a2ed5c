import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { DefaultAzureCredential, SharedTokenCacheCredential, TokenCache, TokenCredential } from "../src/index.js"
import * as Msal from "../src/internal/msalCache.js"
import { captureLogs, setNow, T0, withEnv } from "./support/helpers.js"
import { mockExecutor, output as mockOutput } from "./support/mockCommand.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { dieHttp, json, mockHttp, reset, tokenBody } from "./support/mockHttp.js"

const DEV_APP = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
const VS_APP = "872cd9fa-d31f-45e0-9eab-6e460a02d1f1"
const OTHER_APP = "99999999-0000-0000-0000-000000000001"
const TENANT_A = "aaaaaaaa-0000-0000-0000-00000000000a"
const TENANT_B = "bbbbbbbb-0000-0000-0000-00000000000b"
const SCOPE = "https://management.azure.com/.default"
const PUBLIC = "login.microsoftonline.com"
const S = (millis: number) => String(Math.floor(millis / 1000))

// ---------------------------------------------------------------------------------------------------------------
// fixtures

interface FixtureAccount {
  readonly uid: string
  readonly utid: string
  readonly username: string
  readonly environment?: string
  /** Extra realms (guest tenants) with an Account entry. */
  readonly guestRealms?: ReadonlyArray<string>
  readonly refreshTokens: ReadonlyArray<{ clientId: string; secret: string; familyId?: string; modified?: number }>
  readonly accessTokens?: ReadonlyArray<
    { clientId?: string; realm?: string; target?: string; secret: string; expiresOn: number; cachedAt?: number }
  >
}

const home = (a: FixtureAccount) => `${a.uid}.${a.utid}`

const cacheJson = (accounts: ReadonlyArray<FixtureAccount>) => {
  const out = {
    Account: {} as Record<string, unknown>,
    RefreshToken: {} as Record<string, unknown>,
    AccessToken: {} as Record<string, unknown>,
    IdToken: {} as Record<string, unknown>,
    AppMetadata: {} as Record<string, unknown>
  }
  for (const a of accounts) {
    const env = a.environment ?? PUBLIC
    for (const realm of [a.utid, ...(a.guestRealms ?? [])]) {
      out.Account[`${home(a)}-${env}-${realm}`] = {
        home_account_id: home(a),
        environment: env,
        realm,
        local_account_id: a.uid,
        username: a.username,
        authority_type: "MSSTS",
        client_info: "eyJ1aWQiOiJ4In0"
      }
    }
    for (const rt of a.refreshTokens) {
      out.RefreshToken[`${home(a)}-${env}-refreshtoken-${rt.clientId}--`] = {
        credential_type: "RefreshToken",
        secret: rt.secret,
        home_account_id: home(a),
        environment: env,
        client_id: rt.clientId,
        target: "",
        ...(rt.familyId !== undefined ? { family_id: rt.familyId } : {}),
        last_modification_time: S(rt.modified ?? T0 - 86_400_000)
      }
    }
    for (const at of a.accessTokens ?? []) {
      const clientId = at.clientId ?? DEV_APP
      const realm = at.realm ?? a.utid
      const target = at.target ??
        "https://management.azure.com/.default https://management.azure.com/user_impersonation"
      out.AccessToken[`${home(a)}-${env}-accesstoken-${clientId}-${realm}-${target}`.toLowerCase()] = {
        credential_type: "AccessToken",
        secret: at.secret,
        home_account_id: home(a),
        environment: env,
        client_id: clientId,
        realm,
        target,
        token_type: "Bearer",
        cached_at: S(at.cachedAt ?? T0 - 600_000),
        expires_on: S(at.expiresOn),
        extended_expires_on: S(at.expiresOn)
      }
    }
  }
  return out
}

const alice: FixtureAccount = {
  uid: "alice-uid",
  utid: TENANT_A,
  username: "alice@contoso.com",
  refreshTokens: [{ clientId: VS_APP, secret: "rt-alice-secret", familyId: "1" }]
}
const bob: FixtureAccount = {
  uid: "bob-uid",
  utid: TENANT_A,
  username: "bob@contoso.com",
  refreshTokens: [{ clientId: VS_APP, secret: "rt-bob-secret", familyId: "1" }]
}
/** alice again, with a home account in another tenant */
const aliceB: FixtureAccount = {
  uid: "alice-uid-b",
  utid: TENANT_B,
  username: "alice@contoso.com",
  refreshTokens: [{ clientId: VS_APP, secret: "rt-alice-b-secret", familyId: "1" }]
}

// ---------------------------------------------------------------------------------------------------------------
// harness

interface Harness {
  readonly dir: string
  readonly base: string
  readonly fs: FileSystem.FileSystem
  readonly write: (name: string, content: string | object) => Effect.Effect<void>
  readonly read: (name: string) => Effect.Effect<string>
  readonly bytes: (name: string) => Effect.Effect<Uint8Array>
  readonly exists: (name: string) => Effect.Effect<boolean>
}

const harness = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped()
  const idDir = `${dir}/.IdentityService`
  yield* fs.makeDirectory(idDir)
  const h: Harness = {
    dir,
    base: `${idDir}/msal.cache`,
    fs,
    write: (name, content) =>
      Effect.orDie(
        fs.writeFileString(`${idDir}/${name}`, typeof content === "string" ? content : JSON.stringify(content))
      ),
    read: (name) => Effect.orDie(fs.readFileString(`${idDir}/${name}`)),
    bytes: (name) => Effect.orDie(fs.readFile(`${idDir}/${name}`)),
    exists: (name) => Effect.orDie(fs.exists(`${idDir}/${name}`))
  }
  return h
}).pipe(Effect.provide(NodeFileSystem.layer), Effect.orDie)

/** Builds the credential in the current scope (HOME = the harness directory unless overridden). */
const build = (
  options: SharedTokenCacheCredential.Options,
  http: Layer.Layer<HttpClient.HttpClient>
) =>
  Layer.build(
    SharedTokenCacheCredential.layer(options).pipe(Layer.provide(http), Layer.provide(NodeFileSystem.layer))
  ).pipe(Effect.map((ctx) => Context.get(ctx, TokenCredential.TokenCredential)))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const assertNoSecret = (error: unknown, ...secrets: Array<string>) => {
  const forms = [String((error as Error).message), String(error), JSON.stringify(error)]
  for (const secret of secrets) for (const form of forms) assert.notInclude(form, secret)
}

const value = (t: { token: Redacted.Redacted<string> }) => Redacted.value(t.token)

const tokenHttp = (
  handler: (request: Recorded, index: number) => Answer = (_, i) =>
    json(200, tokenBody(`new-at-${i + 1}`, 3600, { refresh_token: `rotated-rt-${i + 1}`, foci: "1", scope: SCOPE }))
) => mockHttp(handler)

/** Runs a test with a temporary HOME holding `.IdentityService/`, pretending to be Linux. */
const withHome = <A, E>(
  f: (h: Harness) => Effect.Effect<A, E, any>,
  options: { env?: Record<string, string>; platform?: string } = {}
) =>
  Effect.gen(function*() {
    yield* setNow
    const h = yield* harness
    return yield* f(h).pipe(
      withEnv({ HOME: h.dir, ...options.env }),
      Effect.provideService(SharedTokenCacheCredential.Platform, options.platform ?? "linux")
    )
  })

const getError = (options: SharedTokenCacheCredential.Options, http = dieHttp) =>
  Effect.gen(function*() {
    const credential = yield* build(options, http)
    return failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
  })

// ---------------------------------------------------------------------------------------------------------------

describe("SharedTokenCacheCredential: reading the cache", () => {
  it.scoped("one account with a valid cached access token: returned without any request", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([{
            ...alice,
            accessTokens: [{ secret: "cached-at", expiresOn: T0 + 3600_000, cachedAt: T0 - 60_000 }]
          }])
        )
        const credential = yield* build({}, dieHttp)
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(value(token), "cached-at")
        assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + 3600_000)
        assert.strictEqual(credential.name, "SharedTokenCacheCredential")
      })
    ))

  it.scoped("an expired cached access token is not used: the FOCI refresh token is redeemed", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([{ ...alice, accessTokens: [{ secret: "old-at", expiresOn: T0 - 1000 }] }])
        )
        const http = tokenHttp()
        const token = yield* (yield* build({}, http.layer)).getToken(SCOPE)
        assert.strictEqual(value(token), "new-at-1")
        assert.strictEqual(http.requests.length, 1)
        const r = http.requests[0]!
        assert.strictEqual(r.url.href, "https://login.microsoftonline.com/organizations/oauth2/v2.0/token")
        assert.deepStrictEqual(r.form, {
          grant_type: "refresh_token",
          client_id: DEV_APP,
          refresh_token: "rt-alice-secret",
          client_info: "1",
          scope: SCOPE
        })
      })
    ))

  it.scoped("a token that is about to expire (less than 5 minutes) or for other scopes, realm or app is not used", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([{
            ...alice,
            accessTokens: [
              { secret: "soon", expiresOn: T0 + 4 * 60_000 },
              { secret: "graph", expiresOn: T0 + 3600_000, target: "https://graph.microsoft.com/.default" },
              { secret: "other-realm", expiresOn: T0 + 3600_000, realm: TENANT_B },
              { secret: "other-app", expiresOn: T0 + 3600_000, clientId: OTHER_APP },
              { secret: "future", expiresOn: T0 + 3600_000, cachedAt: T0 + 3600_000 }
            ]
          }])
        )
        const http = tokenHttp()
        assert.strictEqual(value(yield* (yield* build({}, http.layer)).getToken(SCOPE)), "new-at-1")
      })
    ))

  it.scoped("the engine caches in memory: a second call reads nothing and sends nothing", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        const http = tokenHttp()
        const credential = yield* build({}, http.layer)
        yield* credential.getToken(SCOPE)
        yield* h.write("msal.cache", "{not json")
        assert.strictEqual(value(yield* credential.getToken(SCOPE)), "new-at-1")
        assert.strictEqual(http.requests.length, 1)
      })
    ))

  it.scoped("environment aliases: an account written under login.windows.net serves the public cloud; other clouds don't", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([{ ...alice, environment: "login.windows.net" }, { ...bob, environment: "login.chinacloudapi.cn" }])
        )
        const http = tokenHttp()
        yield* (yield* build({}, http.layer)).getToken(SCOPE)
        assert.strictEqual(http.requests[0]!.form.refresh_token, "rt-alice-secret")
        // the China cloud sees only bob, under its alias
        const china = tokenHttp()
        yield* (yield* build({ authorityHost: "https://login.partner.microsoftonline.cn" }, china.layer)).getToken(
          SCOPE
        )
        assert.strictEqual(china.requests[0]!.form.refresh_token, "rt-bob-secret")
        assert.strictEqual(china.requests[0]!.url.host, "login.partner.microsoftonline.cn")
      })
    ))

  it.scoped("FOCI: a family refresh token of another app is used; a non-family token of another app is not", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([
            { ...alice, refreshTokens: [{ clientId: OTHER_APP, secret: "rt-not-family" }] },
            { ...bob, refreshTokens: [{ clientId: DEV_APP, secret: "rt-bob-dev-app" }] }
          ])
        )
        const http = tokenHttp()
        yield* (yield* build({}, http.layer)).getToken(SCOPE)
        // alice only has a non-family token: bob is the only account
        assert.strictEqual(http.requests[0]!.form.refresh_token, "rt-bob-dev-app")
        const error = yield* getError({ username: "alice@contoso.com" })
        assert.include(error.message, "No account matching the specified username: alice@contoso.com was found")
      })
    ))

  it.scoped("FOCI-only cache without usable tokens: 'No accounts were found' explains why", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([{ ...alice, refreshTokens: [{ clientId: OTHER_APP, secret: "rt-x" }] }])
        )
        const error = yield* getError({})
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "SharedTokenCacheCredential is unavailable: No accounts were found in the cache.")
        assert.include(error.message, "1 account entry has no refresh token shared with the family")
        assertNoSecret(error, "rt-x")
      })
    ))

  it.scoped("an empty cache, or one with no accounts: 'No accounts were found in the cache'", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", "")
        const empty = yield* getError({})
        assert.include(empty.message, "No accounts were found in the cache. Sign in with a developer tool")
        yield* h.write("msal.cache", { AccessToken: {}, RefreshToken: {}, Account: {} })
        const none = yield* getError({})
        assert.include(none.message, "No accounts were found in the cache.")
        assert.notInclude(none.message, "account entr")
      })
    ))
})

describe("SharedTokenCacheCredential: choosing an account", () => {
  it.scoped("several accounts and no filter: lists them and says how to disambiguate", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice, bob]))
        const error = yield* getError({})
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "Multiple accounts were found in the cache: ")
        assert.include(error.message, `alice@contoso.com (tenant ${TENANT_A})`)
        assert.include(error.message, `bob@contoso.com (tenant ${TENANT_A})`)
        assert.include(error.message, "Use username and tenant id to disambiguate")
        assert.include(error.message, "AZURE_USERNAME and AZURE_TENANT_ID")
        assertNoSecret(error, "rt-alice-secret", "rt-bob-secret")
      })
    ))

  it.scoped("the username filter picks one account (case-insensitively)", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice, bob]))
        const http = tokenHttp()
        yield* (yield* build({ username: "Bob@Contoso.com" }, http.layer)).getToken(SCOPE)
        assert.strictEqual(http.requests[0]!.form.refresh_token, "rt-bob-secret")
      })
    ))

  it.scoped("one username in several tenants: the filter matches several, the tenant id picks one", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice, aliceB, bob]))
        const several = yield* getError({ username: "alice@contoso.com" })
        assert.include(
          several.message,
          "Multiple accounts matching the specified username: alice@contoso.com were found in the cache"
        )
        assert.include(several.message, "Add the tenant id (the tenantId option, or AZURE_TENANT_ID)")
        const http = tokenHttp()
        yield* (yield* build({ username: "alice@contoso.com", tenantId: TENANT_B }, http.layer)).getToken(SCOPE)
        assert.strictEqual(http.requests[0]!.form.refresh_token, "rt-alice-b-secret")
        assert.strictEqual(http.requests[0]!.url.pathname, `/${TENANT_B}/oauth2/v2.0/token`)
        // tenant A alone holds two accounts: several again, this time asking for a username
        const byTenant = yield* getError({ tenantId: TENANT_A })
        assert.include(byTenant.message, `Multiple accounts matching the specified tenant: ${TENANT_A} were found`)
        assert.include(byTenant.message, "Add the username")
        // the tenant alone picks aliceB, whose access token was just written back: no request
        const only = yield* (yield* build({ tenantId: TENANT_B }, dieHttp)).getToken(SCOPE)
        assert.strictEqual(value(only), "new-at-1")
      })
    ))

  it.scoped("a filter that matches nothing names the filter and the accounts there are", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice, bob]))
        const error = yield* getError({ username: "carol@contoso.com", tenantId: TENANT_B })
        assert.include(
          error.message,
          `No account matching the specified username: carol@contoso.com tenant: ${TENANT_B} was found in the cache`
        )
        assert.include(error.message, "alice@contoso.com")
      })
    ))

  it.scoped("a guest Account entry does not duplicate the account", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([{ ...alice, guestRealms: [TENANT_B, "cccccccc-0000-0000-0000-00000000000c"] }])
        )
        const http = tokenHttp()
        yield* (yield* build({}, http.layer)).getToken(SCOPE)
        assert.strictEqual(http.requests.length, 1)
      })
    ))

  it.scoped("an authentication record selects its home account, its tenant and its client id", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice, aliceB, bob]))
        const http = tokenHttp()
        const record: SharedTokenCacheCredential.AuthenticationRecord = {
          authority: "login.microsoftonline.com",
          homeAccountId: home(aliceB),
          tenantId: TENANT_B,
          username: "alice@contoso.com",
          clientId: VS_APP,
          version: "1.0"
        }
        yield* (yield* build({ authenticationRecord: record }, http.layer)).getToken(SCOPE)
        assert.strictEqual(http.requests[0]!.form.refresh_token, "rt-alice-b-secret")
        assert.strictEqual(http.requests[0]!.form.client_id, VS_APP)
        assert.strictEqual(http.requests[0]!.url.pathname, `/${TENANT_B}/oauth2/v2.0/token`)
        const missing = yield* getError({ authenticationRecord: { ...record, homeAccountId: "nobody.x" } })
        assert.include(
          missing.message,
          "No account matching the authentication record (home account id nobody.x) was found in the cache"
        )
      })
    ))

  it.scoped("getToken may ask for another tenant only when allowed", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        const credential = yield* build({ tenantId: TENANT_A }, dieHttp)
        const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: TENANT_B })))
        assert.include(error.message, "additionallyAllowedTenants")
        const http = tokenHttp()
        const open = yield* build({}, http.layer)
        yield* open.getToken(SCOPE, { tenantId: TENANT_B })
        assert.strictEqual(http.requests[0]!.url.pathname, `/${TENANT_B}/oauth2/v2.0/token`)
        const bad = failureOf(yield* Effect.exit(open.getToken([])))
        assert.strictEqual(bad._tag, "CredentialUnavailableError")
      })
    ))

  it.scoped("layerConfig reads AZURE_USERNAME and AZURE_TENANT_ID", () =>
    withHome(
      (h) =>
        Effect.gen(function*() {
          yield* h.write("msal.cache", cacheJson([alice, aliceB, bob]))
          const http = tokenHttp()
          const ctx = yield* Layer.build(
            SharedTokenCacheCredential.layerConfig().pipe(
              Layer.provide(http.layer),
              Layer.provide(NodeFileSystem.layer)
            )
          )
          yield* Context.get(ctx, TokenCredential.TokenCredential).getToken(SCOPE)
          assert.strictEqual(http.requests[0]!.form.refresh_token, "rt-alice-b-secret")
        }),
      { env: { AZURE_USERNAME: "alice@contoso.com", AZURE_TENANT_ID: TENANT_B } }
    ))
  it.scoped("layerConfig with configuration that cannot be read: unavailable, naming the variable", () =>
    withHome(() =>
      Effect.gen(function*() {
        const ctx = yield* Layer.build(
          SharedTokenCacheCredential.layerConfig({ username: Config.string("MY_USERNAME") }).pipe(
            Layer.provide(dieHttp),
            Layer.provide(NodeFileSystem.layer)
          )
        )
        const error = failureOf(yield* Effect.exit(Context.get(ctx, TokenCredential.TokenCredential).getToken(SCOPE)))
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "MY_USERNAME")
      })
    ))
})

describe("SharedTokenCacheCredential: redeeming refresh tokens", () => {
  it.scoped("writes the new access token and rotated refresh token back, keeping every other entry", () =>
    withHome((h) =>
      Effect.gen(function*() {
        const original = cacheJson([
          { ...alice, accessTokens: [{ secret: "old-at", expiresOn: T0 - 1000 }] },
          { ...bob, accessTokens: [{ secret: "bob-at", expiresOn: T0 + 3600_000 }] },
          aliceB
        ])
        const withExtras = {
          ...original,
          AppMetadata: {
            [`appmetadata-${PUBLIC}-${VS_APP}`]: { client_id: VS_APP, environment: PUBLIC, family_id: "1" }
          },
          IdToken: { "some-idtoken-key": { credential_type: "IdToken", secret: "id.token.jwt" } },
          SomethingElse: { kept: true }
        }
        yield* h.write("msal.cache", withExtras)
        const http = tokenHttp()
        yield* (yield* build({ username: "alice@contoso.com", tenantId: TENANT_A }, http.layer)).getToken(SCOPE)
        const after = JSON.parse(yield* h.read("msal.cache"))
        // everything that was there is still there, byte for byte, except alice's RT was rotated... under a new key
        for (const section of ["Account", "IdToken", "AppMetadata", "SomethingElse"] as const) {
          assert.deepStrictEqual(after[section], (withExtras as any)[section])
        }
        for (const [key, entry] of Object.entries(original.AccessToken)) {
          assert.deepStrictEqual(after.AccessToken[key], entry)
        }
        for (const [key, entry] of Object.entries(original.RefreshToken)) {
          assert.deepStrictEqual(after.RefreshToken[key], entry)
        }
        // the new access token, as MSAL writes it
        const atKey = `${home(alice)}-${PUBLIC}-accesstoken-${DEV_APP}-${TENANT_A}-${SCOPE}`.toLowerCase()
        assert.deepStrictEqual(after.AccessToken[atKey], {
          credential_type: "AccessToken",
          secret: "new-at-1",
          home_account_id: home(alice),
          environment: PUBLIC,
          client_id: DEV_APP,
          realm: TENANT_A,
          target: SCOPE,
          token_type: "Bearer",
          cached_at: S(T0),
          expires_on: S(T0 + 3600_000),
          extended_expires_on: S(T0 + 3600_000)
        })
        const rtKey = `${home(alice)}-${PUBLIC}-refreshtoken-${DEV_APP}--`.toLowerCase()
        assert.strictEqual(after.RefreshToken[rtKey].secret, "rotated-rt-1")
        assert.strictEqual(after.RefreshToken[rtKey].family_id, "1")
        assert.strictEqual(after.RefreshToken[rtKey].last_modification_time, S(T0))
        assert.isFalse(yield* h.exists("msal.cache.lockfile"))
        const names = yield* Effect.orDie(h.fs.readDirectory(`${h.dir}/.IdentityService`))
        assert.deepStrictEqual(names, ["msal.cache"])
        // a new layer (another program) now finds the written access token: no request
        const token = yield* (yield* build({ username: "alice@contoso.com", tenantId: TENANT_A }, dieHttp)).getToken(
          SCOPE
        )
        assert.strictEqual(value(token), "new-at-1")
      })
    ))

  it.scoped("a second rotation replaces the developer app's refresh token in place", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        const http = tokenHttp()
        yield* (yield* build({}, http.layer)).getToken(SCOPE)
        yield* (yield* build({}, http.layer)).getToken(SCOPE, { claims: "{\"access_token\":{}}" })
        const after = JSON.parse(yield* h.read("msal.cache"))
        const devTokens = Object.values(after.RefreshToken).filter((rt: any) => rt.client_id === DEV_APP) as Array<any>
        assert.strictEqual(devTokens.length, 1)
        assert.strictEqual(devTokens[0].secret, "rotated-rt-2")
        // the second redemption used the rotated token first
        assert.strictEqual(http.requests[1]!.form.refresh_token, "rotated-rt-1")
        assert.strictEqual(http.requests[1]!.form.claims, "{\"access_token\":{}}")
      })
    ))

  it.scoped("tries each refresh token in turn; all rejected (invalid_grant) → AuthenticationRequiredError", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([{
            ...alice,
            refreshTokens: [
              { clientId: VS_APP, secret: "rt-one", familyId: "1", modified: T0 - 1000 },
              { clientId: OTHER_APP, secret: "rt-two", familyId: "1", modified: T0 - 5000 }
            ]
          }])
        )
        const before = yield* h.bytes("msal.cache")
        const http = mockHttp(() =>
          json(400, { error: "invalid_grant", error_description: "AADSTS70008: expired", error_codes: [70008] })
        )
        const logs = captureLogs()
        const error = yield* getError({}, http.layer).pipe(Effect.provide(logs.layer))
        assert.strictEqual(error._tag, "AuthenticationRequiredError")
        assert.include(
          error.message,
          "Token acquisition failed for user 'alice@contoso.com'. To fix, re-authenticate through developer tooling " +
            "supporting Azure single sign on"
        )
        assert.deepStrictEqual(http.requests.map((r) => r.form.refresh_token), ["rt-one", "rt-two"])
        assertNoSecret(error, "rt-one", "rt-two")
        for (const line of logs.lines) for (const s of ["rt-one", "rt-two"]) assert.notInclude(line, s)
        assert.deepStrictEqual(yield* h.bytes("msal.cache"), before)
      })
    ))

  it.scoped("another refusal by the authority is a ClientAuthenticationError (the chain stops)", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        const http = mockHttp(() =>
          json(401, { error: "invalid_client", error_codes: [7000215], correlation_id: "corr-1" })
        )
        const error = yield* getError({}, http.layer)
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        assert.include(error.message, "Token acquisition failed for user 'alice@contoso.com'")
        assert.strictEqual((error as any).status, 401)
        assert.strictEqual((error as any).correlationId, "corr-1")
        assertNoSecret(error, "rt-alice-secret")
      })
    ))

  it.scoped("no answer from the authority → CredentialUnavailableError", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        const http = mockHttp(() => reset)
        const error = yield* getError({
          retryPolicy: {
            maxRetries: 0,
            baseDelayMillis: 1,
            maxDelayMillis: 1,
            maxElapsedMillis: 1,
            attemptTimeoutMillis: 1000,
            retryStatus: () => false
          }
        }, http.layer)
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "no answer from the token endpoint")
      })
    ))

  it.scoped("CAE: reads msal.cache.cae first and declares CP1", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([bob]))
        yield* h.write("msal.cache.cae", cacheJson([alice]))
        const http = tokenHttp()
        const credential = yield* build({}, http.layer)
        yield* credential.getToken(SCOPE, { enableCae: true })
        assert.strictEqual(http.requests[0]!.form.refresh_token, "rt-alice-secret")
        assert.include(http.requests[0]!.form.claims!, "CP1")
        assert.include(yield* h.read("msal.cache.cae"), "rotated-rt-1")
        assert.notInclude(yield* h.read("msal.cache"), "rotated-rt-1")
        // without CAE: .nocae is absent, so msal.cache
        yield* credential.getToken(SCOPE)
        assert.strictEqual(http.requests[1]!.form.refresh_token, "rt-bob-secret")
      })
    ))

  it.scoped("msal.cache.nocae wins over msal.cache; cachePath replaces the base name", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([bob]))
        yield* h.write("msal.cache.nocae", cacheJson([alice]))
        yield* h.write("custom.json", cacheJson([aliceB]))
        const http = tokenHttp()
        yield* (yield* build({}, http.layer)).getToken(SCOPE)
        assert.strictEqual(http.requests[0]!.form.refresh_token, "rt-alice-secret")
        yield* (yield* build({ cachePath: `${h.dir}/.IdentityService/custom.json` }, http.layer)).getToken(SCOPE)
        assert.strictEqual(http.requests[1]!.form.refresh_token, "rt-alice-b-secret")
      })
    ))
})

describe("SharedTokenCacheCredential: unreadable caches", () => {
  it.scoped("a truncated file → typed error, and the file is left untouched", () =>
    withHome((h) =>
      Effect.gen(function*() {
        const full = JSON.stringify(cacheJson([alice]))
        yield* h.write("msal.cache", full.slice(0, full.length / 2))
        const before = yield* h.bytes("msal.cache")
        const error = yield* getError({})
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "is not valid JSON (corrupt or truncated; it was left untouched)")
        assertNoSecret(error, "rt-alice-secret")
        assert.deepStrictEqual(yield* h.bytes("msal.cache"), before)
        assert.isFalse(yield* h.exists("msal.cache.lockfile"))
      })
    ))

  it.scoped("JSON that is not an MSAL cache → typed error naming what is wrong, file untouched", () =>
    withHome((h) =>
      Effect.gen(function*() {
        for (const content of ["[1,2]", "{\"Account\": 5, \"RefreshToken\": {\"k\": {\"secret\": \"rt-zzz\"}}}"]) {
          yield* h.write("msal.cache", content)
          const error = yield* getError({})
          assert.include(error.message, "does not have the MSAL cache layout")
          assertNoSecret(error, "rt-zzz")
          assert.strictEqual(yield* h.read("msal.cache"), content)
        }
      })
    ))

  it.scoped("malformed entries are skipped, the rest is used", () =>
    withHome((h) =>
      Effect.gen(function*() {
        const cache = cacheJson([alice]) as any
        cache.RefreshToken.broken = { secret: 42 }
        cache.AccessToken.broken = { expires_on: "soon" }
        cache.Account.broken = "nope"
        yield* h.write("msal.cache", cache)
        const http = tokenHttp()
        yield* (yield* build({}, http.layer)).getToken(SCOPE)
        assert.strictEqual(http.requests.length, 1)
      })
    ))

  it.scoped("Linux without a cache file: explains the keyring and the plaintext opt-in", () =>
    withHome(() =>
      Effect.gen(function*() {
        const error = yield* getError({})
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "no shared token cache file was found")
        assert.include(error.message, "msal.cache.nocae")
        assert.include(error.message, "Secret Service keyring (libsecret over D-Bus")
        assert.include(error.message, "allow_unencrypted_storage=True")
        assert.include(error.message, "AzureCliCredential")
      })
    ))

  it.scoped("macOS and Windows: the Keychain and DPAPI are named; the Windows path comes from LOCALAPPDATA", () =>
    Effect.gen(function*() {
      const mac = yield* withHome(() => getError({}), { platform: "darwin" })
      assert.include(mac.message, "Keychain")
      const win = yield* withHome(() => getError({}), {
        platform: "win32",
        env: { LOCALAPPDATA: "C:\\Users\\a\\AppData\\Local" }
      })
      assert.include(win.message, "C:\\Users\\a\\AppData\\Local\\.IdentityService\\msal.cache.nocae")
      assert.include(win.message, "Visual Studio")
      const profile = yield* withHome(() => getError({}), { platform: "win32", env: { USERPROFILE: "C:\\Users\\b" } })
      assert.include(profile.message, "C:\\Users\\b\\AppData\\Local\\.IdentityService\\msal.cache")
      const none = yield* withHome(() => getError({}), { platform: "win32" })
      assert.include(none.message, "neither LOCALAPPDATA nor USERPROFILE is set")
      const other = yield* withHome(() => getError({}), { platform: "freebsd" })
      assert.include(other.message, "point cachePath at a plaintext MSAL cache")
    }))

  it.scoped("a DPAPI-encrypted file on Windows (via cachePath) is named as such, and macOS's signal file too", () =>
    Effect.gen(function*() {
      for (const [platform, word] of [["win32", "DPAPI"], ["darwin", "Keychain"]] as const) {
        const error = yield* withHome((h) =>
          Effect.zipRight(
            h.write("msal.cache", "\u0001\u0000\u0000\u0000binary-dpapi-blob"),
            getError({ cachePath: `${h.dir}/.IdentityService/msal.cache` })
          ), { platform })
        assert.include(error.message, word)
        assert.include(error.message, "is not plaintext JSON")
      }
    }))

  it.scoped("no HOME → unavailable, saying what to set", () =>
    Effect.gen(function*() {
      yield* setNow
      const error = yield* getError({}).pipe(
        withEnv({}),
        Effect.provideService(SharedTokenCacheCredential.Platform, "linux")
      )
      assert.include(error.message, "HOME is not set")
    }))

  it.scoped("an unreadable file (a directory) → unavailable with the reason", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* Effect.orDie(h.fs.makeDirectory(`${h.dir}/.IdentityService/msal.cache.nocae`))
        const error = yield* getError({})
        assert.include(error.message, "could not be read")
      })
    ))

  it.scoped("an invalid authority host or tenant id is reported at use", () =>
    withHome(() =>
      Effect.gen(function*() {
        assert.include((yield* getError({ authorityHost: "http://evil.example" })).message, "loopback")
        assert.include((yield* getError({ tenantId: "bad tenant" })).message, "invalid tenant id")
      })
    ))

  it.effect("supported: Linux only", () =>
    Effect.gen(function*() {
      const on = (platform: string) =>
        SharedTokenCacheCredential.supported.pipe(Effect.provideService(SharedTokenCacheCredential.Platform, platform))
      assert.isTrue(yield* on("linux"))
      assert.isFalse(yield* on("darwin"))
      assert.isFalse(yield* on("win32"))
      assert.isFalse(yield* on("aix"))
      assert.strictEqual(yield* SharedTokenCacheCredential.supported, process.platform === "linux")
    }))
})

describe("SharedTokenCacheCredential: the lock file", () => {
  it.scoped("waits for a lock held by another program (TestClock), then writes", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        yield* h.write("msal.cache.lockfile", JSON.stringify({ createdAt: T0 }))
        const credential = yield* build({}, tokenHttp().layer)
        const fiber = yield* Effect.fork(credential.getToken(SCOPE))
        for (let i = 0; i < 20; i++) {
          yield* TestClock.adjust("50 millis")
          yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
        }
        assert.notInclude(yield* h.read("msal.cache"), "rotated-rt-1")
        assert.isTrue(fiber.unsafePoll() === null)
        yield* Effect.orDie(h.fs.remove(`${h.dir}/.IdentityService/msal.cache.lockfile`))
        let done = fiber.unsafePoll()
        for (let i = 0; i < 50 && done === null; i++) {
          yield* TestClock.adjust("50 millis")
          yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
          done = fiber.unsafePoll()
        }
        assert.strictEqual(value(yield* Fiber.join(fiber)), "new-at-1")
        assert.include(yield* h.read("msal.cache"), "rotated-rt-1")
        assert.isFalse(yield* h.exists("msal.cache.lockfile"))
      })
    ))

  it.scoped("breaks a stale lock (by the time written in it, or its modification time)", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        yield* h.write("msal.cache.lockfile", JSON.stringify({ createdAt: T0 - 60_000 }))
        const logs = captureLogs()
        yield* (yield* build({}, tokenHttp().layer)).getToken(SCOPE).pipe(Effect.provide(logs.layer))
        assert.include(yield* h.read("msal.cache"), "rotated-rt-1")
        assert.isTrue(logs.lines.some((l) => l.includes("removing a stale token cache lock")))
        // a lock in msal-extensions' format (no time): its modification time counts
        yield* h.write("msal.cache.lockfile", "12345 python")
        const old = new Date(T0 - 120_000)
        yield* Effect.orDie(h.fs.utimes(`${h.dir}/.IdentityService/msal.cache.lockfile`, old, old))
        yield* (yield* build({}, tokenHttp().layer)).getToken(SCOPE, { claims: "{}" })
        assert.isFalse(yield* h.exists("msal.cache.lockfile"))
      })
    ))

  it.scoped("a lock held past the timeout: the token is returned, the file untouched, a warning logged", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        const before = yield* h.bytes("msal.cache")
        const logs = captureLogs()
        const credential = yield* build({ lock: { timeoutMillis: 1000, staleMillis: 60_000 } }, tokenHttp().layer)
        yield* h.write("msal.cache.lockfile", JSON.stringify({ createdAt: T0 }))
        const fiber = yield* Effect.fork(credential.getToken(SCOPE).pipe(Effect.provide(logs.layer)))
        let done = fiber.unsafePoll()
        for (let i = 0; i < 100 && done === null; i++) {
          yield* TestClock.adjust("50 millis")
          yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
          done = fiber.unsafePoll()
        }
        assert.strictEqual(value(yield* Fiber.join(fiber)), "new-at-1")
        assert.deepStrictEqual(yield* h.bytes("msal.cache"), before)
        const warning = logs.lines.find((l) => l.includes("could not write the new token back"))
        assert.isDefined(warning)
        assert.include(warning!, "was held for 1 s")
        for (const line of logs.lines) {
          for (const s of ["new-at-1", "rotated-rt-1", "rt-alice-secret"]) assert.notInclude(line, s)
        }
        assert.isTrue(yield* h.exists("msal.cache.lockfile"))
      })
    ))

  it.scoped("a write-back the file system refuses: the token is still returned, a warning names the failure", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        // the cache file is replaced by a directory after it was read: the re-read under the lock fails
        const http = mockHttp(() =>
          Effect.as(
            Effect.orDie(
              Effect.zipRight(
                h.fs.remove(`${h.dir}/.IdentityService/msal.cache`),
                h.fs.makeDirectory(`${h.dir}/.IdentityService/msal.cache`)
              )
            ),
            json(200, tokenBody("new-at", 3600, { refresh_token: "rotated" }))
          )
        )
        const logs = captureLogs()
        const token = yield* (yield* build({}, http.layer)).getToken(SCOPE).pipe(Effect.provide(logs.layer))
        assert.strictEqual(value(token), "new-at")
        const warning = logs.lines.find((l) => l.includes("could not write the new token back"))
        assert.isDefined(warning)
        assert.include(warning!, "(it is a directory, not a regular file")
        assert.notInclude(warning!, "new-at")
        assert.notInclude(warning!, "rotated")
      })
    ))

  it.scoped("a file that became corrupt before the write-back is not overwritten", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        const http = mockHttp(() =>
          Effect.as(
            h.write("msal.cache", "{\"truncated"),
            json(200, tokenBody("new-at", 3600, { refresh_token: "rotated" }))
          )
        )
        const logs = captureLogs()
        const token = yield* (yield* build({}, http.layer)).getToken(SCOPE).pipe(Effect.provide(logs.layer))
        assert.strictEqual(value(token), "new-at")
        assert.strictEqual(yield* h.read("msal.cache"), "{\"truncated")
        assert.isTrue(logs.lines.some((l) => l.includes("it is no longer a valid MSAL cache")))
      })
    ))
})

describe("SharedTokenCacheCredential: any file content", () => {
  const entry = FastCheck.dictionary(
    FastCheck.constantFrom(
      "home_account_id",
      "environment",
      "realm",
      "username",
      "secret",
      "client_id",
      "target",
      "family_id",
      "expires_on",
      "cached_at"
    ),
    FastCheck.oneof(
      FastCheck.string(),
      FastCheck.integer(),
      FastCheck.constant(null),
      FastCheck.constantFrom(PUBLIC, `alice-uid.${TENANT_A}`, "1", S(T0 + 3600_000))
    )
  )
  const section = FastCheck.dictionary(FastCheck.string({ maxLength: 8 }), FastCheck.oneof(entry, FastCheck.anything()))
  const content = FastCheck.oneof(
    FastCheck.record({ Account: section, RefreshToken: section, AccessToken: section }, { requiredKeys: [] })
      .map((o) => JSON.stringify(o)),
    FastCheck.json(),
    FastCheck.string()
  )

  it.effect.prop(
    "decoding and account selection never throw: a cache, or a reason",
    [content],
    ([text]) =>
      Effect.sync(() => {
        const decoded = Msal.decodeText(text)
        if (decoded._tag === "Left") {
          assert.oneOf(decoded.left._tag, ["NotJson", "NotACache"])
          return
        }
        const selected = Msal.selectAccount(decoded.right, {
          environments: Msal.environmentsOf(PUBLIC),
          clientId: DEV_APP,
          username: undefined,
          tenantId: undefined
        })
        if (selected._tag === "Left") assert.isString(selected.left)
        else {
          Msal.findAccessToken(decoded.right, {
            account: selected.right.account,
            environments: Msal.environmentsOf(PUBLIC),
            clientId: DEV_APP,
            realm: TENANT_A,
            scopes: [SCOPE],
            nowMillis: T0
          })
        }
      })
  )
})

describe("SharedTokenCacheCredential: review fixes", () => {
  it.scoped("a cached access token with an expiry beyond any representable date is skipped, not a defect", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write(
          "msal.cache",
          cacheJson([{ ...alice, accessTokens: [{ secret: "huge-at", expiresOn: 1e17, cachedAt: T0 - 1000 }] }])
        )
        const http = tokenHttp()
        const token = yield* (yield* build({}, http.layer)).getToken(SCOPE)
        assert.strictEqual(value(token), "new-at-1")
        yield* h.write(
          "msal.cache",
          cacheJson([{ ...alice, accessTokens: [{ secret: "old-at", expiresOn: T0 + 3600_000, cachedAt: -1e17 }] }])
        )
        const again = yield* (yield* build({}, tokenHttp().layer)).getToken(SCOPE)
        assert.strictEqual(value(again), "new-at-1")
      })
    ))

  it.scoped("with a persistent TokenCache and no account filter, a new signed-in account never gets the old one's token", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", cacheJson([alice]))
        const first = yield* (yield* build({}, tokenHttp().layer)).getToken(SCOPE)
        assert.strictEqual(value(first), "new-at-1")
        // alice signs out, bob signs in; another program starts
        yield* h.write("msal.cache", cacheJson([bob]))
        const http = tokenHttp((_, i) => json(200, tokenBody(`bob-at-${i + 1}`, 3600, { scope: SCOPE })))
        const second = yield* (yield* build({}, http.layer)).getToken(SCOPE)
        assert.strictEqual(value(second), "bob-at-1")
        assert.strictEqual(http.requests[0]?.form.refresh_token, "rt-bob-secret")
      }).pipe(Effect.provideServiceEffect(TokenCache.TokenCache, TokenCache.makeMemory))
    ))
})

describe("SharedTokenCacheCredential: deeply nested content", () => {
  const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth)

  it.scoped("3,000 nested arrays anywhere in the file → CredentialUnavailableError, never a defect", () =>
    withHome((h) =>
      Effect.gen(function*() {
        for (
          const content of [
            deep(3000),
            `{"AccessToken": ${deep(3000)}}`,
            `{"Account": ${deep(3000)}, "RefreshToken": ${deep(3000)}}`,
            `{"AppMetadata": {"a": 1}, "IdToken": ${deep(20_000)}}`
          ]
        ) {
          yield* h.write("msal.cache", content)
          const error = yield* getError({})
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "does not have the MSAL cache layout")
          assert.isBelow(error.message.length, 2_000)
          assert.strictEqual(yield* h.read("msal.cache"), content)
        }
      })
    ))

  it.scoped("a usable cache with a deeply nested unknown section: the token is returned, the file left as it was", () =>
    withHome((h) =>
      Effect.gen(function*() {
        const cache = { ...cacheJson([alice]), Extra: "__DEEP__" }
        const content = JSON.stringify(cache).replace("\"__DEEP__\"", deep(200_000))
        yield* h.write("msal.cache", content)
        const logs = captureLogs()
        const token = yield* (yield* build({}, tokenHttp().layer)).getToken(SCOPE).pipe(Effect.provide(logs.layer))
        assert.strictEqual(value(token), "new-at-1")
        assert.strictEqual(yield* h.read("msal.cache"), content)
        assert.isTrue(logs.lines.some((l) => l.includes("could not write the new token back")))
        assert.isFalse(yield* h.exists("msal.cache.lockfile"))
      })
    ))

  it.scoped("DefaultAzureCredential: a corrupt shared cache does not stop the chain, the next link answers", () =>
    withHome((h) =>
      Effect.gen(function*() {
        yield* h.write("msal.cache", `{"AccessToken": ${deep(3000)}}`)
        const exec = mockExecutor(() =>
          mockOutput(JSON.stringify({ accessToken: "cli-token", expires_on: Math.floor(T0 / 1000) + 3600 }))
        )
        const ctx = yield* Layer.build(
          DefaultAzureCredential.layer({
            exclude: [
              "EnvironmentCredential",
              "WorkloadIdentityCredential",
              "ManagedIdentityCredential",
              "AzureDeveloperCliCredential"
            ]
          }).pipe(Layer.provide(Layer.mergeAll(dieHttp, exec.layer, NodeFileSystem.layer)))
        )
        const token = yield* Context.get(ctx, TokenCredential.TokenCredential).getToken(SCOPE)
        assert.strictEqual(value(token), "cli-token")
        assert.strictEqual(exec.commands.length, 1)
      })
    ))
})

describe("SharedTokenCacheCredential: lock waits", () => {
  const tick = Effect.promise(() => new Promise((r) => setImmediate(r)))

  it.scoped("waiting for a lock held by another program can be interrupted at once, and leaves the lock alone", () =>
    withHome((h) =>
      Effect.gen(function*() {
        const lockPath = `${h.dir}/.IdentityService/msal.cache.lockfile`
        const theirs = JSON.stringify({ owner: "other", createdAt: T0 })
        yield* h.write("msal.cache.lockfile", theirs)
        let ran = false
        const fiber = yield* Effect.fork(
          Msal.withLock(h.fs, lockPath, Msal.defaultLockOptions, Effect.sync(() => (ran = true)))
        )
        for (let i = 0; i < 5; i++) {
          yield* TestClock.adjust("50 millis")
          yield* tick
        }
        const interrupting = yield* Effect.fork(Fiber.interrupt(fiber))
        // "at once": without the clock moving (only file operations already started may finish; under load they
        // take a few event-loop turns)
        for (let i = 0; i < 2_000 && interrupting.unsafePoll() === null; i++) yield* tick
        assert.isNotNull(interrupting.unsafePoll(), "the lock wait could not be interrupted")
        assert.isFalse(ran)
        assert.strictEqual(yield* h.read("msal.cache.lockfile"), theirs)
      })
    ))

  it.scoped("a stale lock replaced by a fresh one after it was judged stale is not removed", () =>
    withHome((h) =>
      Effect.gen(function*() {
        const lockPath = `${h.dir}/.IdentityService/msal.cache.lockfile`
        yield* h.write("msal.cache.lockfile", JSON.stringify({ owner: "crashed", createdAt: T0 - 60_000 }))
        const fresh = JSON.stringify({ owner: "fresh-writer", createdAt: T0 })
        // the file system swaps in another writer's fresh lock right after the stale one was read
        let swapped = false
        const racing: FileSystem.FileSystem = {
          ...h.fs,
          readFileString: (path, encoding) =>
            Effect.tap(h.fs.readFileString(path, encoding), () =>
              path === lockPath && !swapped
                ? Effect.orDie(Effect.zipRight(Effect.sync(() => (swapped = true)), h.fs.writeFileString(path, fresh)))
                : Effect.void)
        }
        let ran = false
        const fiber = yield* Effect.fork(
          Msal.withLock(
            racing,
            lockPath,
            { ...Msal.defaultLockOptions, timeoutMillis: 1_000 },
            Effect.sync(() => {
              ran = true
            })
          )
        )
        for (let i = 0; i < 40 && fiber.unsafePoll() === null; i++) {
          yield* TestClock.adjust("50 millis")
          yield* tick
        }
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(swapped)
        assert.isFalse(ran, "the fresh lock was removed and both writers held the lock")
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(yield* h.read("msal.cache.lockfile"), fresh)
        assert.isFalse(yield* h.exists("msal.cache.lockfile.break"))
      })
    ))
})

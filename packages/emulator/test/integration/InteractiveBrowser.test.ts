/**
 * End to end: a real headless Chromium goes through the emulator's sign-in form to InteractiveBrowserCredential's
 * loopback redirect listener, and the credential gets a token. The browser reaches only loopback: every request it
 * makes to another host is aborted (and recorded), and its resolver maps every other name to nothing.
 *
 * Needs Debian's `chromium` at /usr/bin/chromium (`.ci/run` installs it). Without it the test reports itself
 * skipped, unless REQUIRE_BROWSER is set (CI), where a missing browser is a failure.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  AuthenticationRecord,
  InteractiveBrowserCredential,
  TokenCredential,
  UserCredential
} from "effect-azure-identity"
import * as IdentityNode from "effect-azure-identity/node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { chromium } from "playwright-core"
import type { BrowserContext } from "playwright-core"
import { withEnv } from "../../../../test/support/helpers.js"
import * as IdentityEmulator from "../../src/IdentityEmulator.js"

const CHROMIUM = "/usr/bin/chromium"
const SCOPE = "https://vault.azure.net/.default"
const USER = "ada@emulator.test"
const PASSWORD = "ada-password"

const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--no-proxy-server",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
]

const isLoopbackHost = (host: string) => host === "localhost" || host === "127.0.0.1" || host === "[::1]"

/** A fresh Chromium profile in a temporary directory, closed and removed with the scope. */
const launch = Effect.acquireRelease(
  Effect.promise(async () => {
    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "eai-chromium-"))
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: chromiumArgs
    })
    const refused: Array<string> = []
    await context.route("**/*", (route) => {
      const url = new URL(route.request().url())
      if (isLoopbackHost(url.hostname)) return route.continue()
      refused.push(url.origin)
      return route.abort()
    })
    return { context, userDataDir, refused }
  }),
  ({ context, userDataDir }) =>
    Effect.promise(async () => {
      await context.close()
      fs.rmSync(userDataDir, { recursive: true, force: true })
    })
)

/**
 * The user at the browser: opens the sign-in page, types a wrong password first (the form comes back with an
 * error), then the right one; the browser is redirected to the credential's listener. Records what it saw.
 */
const userAtBrowser = (context: BrowserContext, seen: Array<string>) =>
  Layer.succeed(InteractiveBrowserCredential.BrowserOpener, {
    open: (url) =>
      Effect.promise(async () => {
        const page = await context.newPage()
        await page.goto(url)
        seen.push(`username prefilled: ${await page.inputValue("#username")}`)
        await page.fill("#password", "wrong-password")
        await page.click("#signin")
        seen.push(`after a wrong password: ${await page.textContent("#error")}`)
        await page.fill("#password", PASSWORD)
        await page.click("#signin")
        await page.waitForURL((u) => u.hostname === "localhost")
        seen.push(`landed on: ${new URL(page.url()).origin}`)
        seen.push(`page: ${await page.textContent("body")}`)
        await page.close()
      })
  })

const browserMissing = !fs.existsSync(CHROMIUM)
const required = process.env.REQUIRE_BROWSER !== undefined && process.env.REQUIRE_BROWSER !== ""

describe("InteractiveBrowserCredential end to end (headless Chromium, emulator sign-in form)", () => {
  it.live("signs in through the form, gets a token, authenticate() gives the record; only loopback", (ctx) => {
    if (browserMissing) {
      if (required) {
        return Effect.die(new Error(`REQUIRE_BROWSER is set but ${CHROMIUM} is missing: apt-get install -y chromium`))
      }
      ctx.skip(`${CHROMIUM} is not installed (apt-get install -y chromium); set REQUIRE_BROWSER=1 to make this fail`)
      return Effect.void
    }
    return Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make({
        apps: [{ clientId: IdentityEmulator.defaultClientId, publicClient: true }],
        users: [{ username: USER, password: PASSWORD }]
      })
      const browser = yield* launch
      const seen: Array<string> = []
      const CredentialLive = InteractiveBrowserCredential.layer({
        tenantId: emulator.tenantId,
        clientId: emulator.clientId,
        authorityHost: emulator.url,
        loginHint: USER,
        timeout: "60 seconds"
      }).pipe(
        Layer.provide(userAtBrowser(browser.context, seen)),
        Layer.provide(IdentityNode.layer)
      )
      const { record, token, again } = yield* Effect.gen(function*() {
        const record = yield* UserCredential.authenticate(SCOPE)
        const token = yield* TokenCredential.getToken(SCOPE)
        const again = yield* TokenCredential.getToken("https://graph.microsoft.com/User.Read")
        return { record, token, again }
      }).pipe(Effect.provide(CredentialLive))
      assert.deepStrictEqual(seen.slice(0, 2), [
        `username prefilled: ${USER}`,
        "after a wrong password: Your account or password is incorrect."
      ])
      assert.match(seen[2]!, /^landed on: http:\/\/localhost:\d+$/)
      assert.include(seen[3]!, "You can close this window")
      const claims = yield* emulator.verifyToken(Redacted.value(token.token))
      assert.strictEqual(claims.upn, USER)
      assert.strictEqual(claims.aud, "https://vault.azure.net")
      assert.isTrue((yield* emulator.verifyToken(Redacted.value(again.token))).aud !== undefined)
      assert.strictEqual(record.username, USER)
      assert.strictEqual(record.authority, new URL(emulator.url).host)
      assert.strictEqual(record.clientId, emulator.clientId)
      assert.isTrue(record.homeAccountId.endsWith(`.${emulator.tenantId}`))
      assert.strictEqual(
        (yield* AuthenticationRecord.deserialize(AuthenticationRecord.serialize(record))).username,
        USER
      )
      // one browser sign-in for everything: the other scope came from the refresh token
      assert.strictEqual(seen.filter((s) => s.startsWith("landed on")).length, 1)
      assert.deepStrictEqual(browser.refused, [])
    }).pipe(Effect.scoped, withEnv({}))
  }, 120_000)
})

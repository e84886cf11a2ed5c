import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { SharedTokenCacheCredential, TokenCredential } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { guardedNodeArgs, withEnv } from "../support/helpers.js"
import { listen, sendJson } from "../support/loopbackServer.js"
import { json, mockHttp, tokenBody } from "../support/mockHttp.js"

const DEV_APP = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
const VS_APP = "872cd9fa-d31f-45e0-9eab-6e460a02d1f1"
const TENANT = "aaaaaaaa-0000-0000-0000-00000000000a"
const SCOPE = "https://management.azure.com/.default"

/** A cache with `n` users (user0…), each with a FOCI refresh token `rt-user<i>`. */
const cacheWith = (n: number, environment: string) => {
  const cache = { Account: {} as Record<string, unknown>, RefreshToken: {} as Record<string, unknown>, AccessToken: {} }
  for (let i = 0; i < n; i++) {
    const home = `uid${i}.${TENANT}`
    cache.Account[`${home}-${environment}-${TENANT}`] = {
      home_account_id: home,
      environment,
      realm: TENANT,
      local_account_id: `uid${i}`,
      username: `user${i}@contoso.com`,
      authority_type: "MSSTS"
    }
    cache.RefreshToken[`${home}-${environment}-refreshtoken-${VS_APP}--`] = {
      credential_type: "RefreshToken",
      secret: `rt-user${i}`,
      home_account_id: home,
      environment,
      client_id: VS_APP,
      target: "",
      family_id: "1"
    }
  }
  return cache
}

const tempCache = (content: object) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped()
    const path = `${dir}/msal.cache`
    yield* fs.writeFileString(path, JSON.stringify(content))
    return { fs, dir, path }
  }).pipe(Effect.provide(NodeFileSystem.layer), Effect.orDie)

const credential = (options: SharedTokenCacheCredential.Options, http: Layer.Layer<HttpClient.HttpClient>) =>
  Layer.build(
    SharedTokenCacheCredential.layer(options).pipe(Layer.provide(http), Layer.provide(NodeFileSystem.layer))
  ).pipe(Effect.map((ctx) => Context.get(ctx, TokenCredential.TokenCredential)))

describe("SharedTokenCacheCredential against the real file system", () => {
  it.scopedLive("concurrent writers (one per account) never corrupt the file nor lose each other's entries", () =>
    Effect.gen(function*() {
      const users = 12
      const original = cacheWith(users, "login.microsoftonline.com")
      const { fs, path } = yield* tempCache(original)
      const http = mockHttp((request) => {
        const user = request.form.refresh_token!.replace("rt-", "")
        return json(200, tokenBody(`at-${user}`, 3600, { refresh_token: `rotated-${user}`, foci: "1", scope: SCOPE }))
      })
      const credentials = yield* Effect.forEach(
        Array.from({ length: users }, (_, i) => i),
        (i) => credential({ cachePath: path, username: `user${i}@contoso.com` }, http.layer)
      )
      const tokens = yield* Effect.forEach(credentials, (c) => c.getToken(SCOPE), { concurrency: "unbounded" })
      assert.deepStrictEqual(tokens.map((t) => Redacted.value(t.token)), credentials.map((_, i) => `at-user${i}`))
      const after = JSON.parse(yield* Effect.orDie(fs.readFileString(path)))
      assert.deepStrictEqual(after.Account, original.Account)
      for (const [key, entry] of Object.entries(original.RefreshToken)) {
        assert.deepStrictEqual(after.RefreshToken[key], entry)
      }
      for (let i = 0; i < users; i++) {
        const home = `uid${i}.${TENANT}`
        assert.strictEqual(
          after.RefreshToken[`${home}-login.microsoftonline.com-refreshtoken-${DEV_APP}--`.toLowerCase()].secret,
          `rotated-user${i}`
        )
        const at = Object.values(after.AccessToken).find((e: any) => e.home_account_id === home) as any
        assert.strictEqual(at.secret, `at-user${i}`)
      }
      // no lock and no temporary file is left behind
      const names = yield* Effect.orDie(fs.readDirectory(path.slice(0, path.lastIndexOf("/"))))
      assert.deepStrictEqual(names, ["msal.cache"])
    }).pipe(withEnv({ HOME: "/nonexistent" })))

  it.scopedLive("redeems a refresh token against a loopback token server (real Node HttpClient) and writes it back", () =>
    Effect.gen(function*() {
      let rejectAll = false
      const server = yield* listen((req, res) => {
        if (
          rejectAll || req.url.pathname !== "/organizations/oauth2/v2.0/token" ||
          req.form.grant_type !== "refresh_token" ||
          req.form.refresh_token !== "rt-user0" || req.form.client_id !== DEV_APP || req.form.client_info !== "1"
        ) {
          return sendJson(res, 400, { error: "invalid_grant", error_codes: [70008] })
        }
        sendJson(res, 200, {
          token_type: "Bearer",
          expires_in: 3599,
          access_token: "loopback-at",
          refresh_token: "loopback-rt",
          scope: SCOPE,
          foci: "1"
        })
      })
      const { fs, path } = yield* tempCache(cacheWith(1, "127.0.0.1"))
      const ctx = yield* Layer.build(
        SharedTokenCacheCredential.layer({ cachePath: path, authorityHost: server.url }).pipe(
          Layer.provide(IdentityNode.layer)
        )
      )
      const c = Context.get(ctx, TokenCredential.TokenCredential)
      const token = yield* c.getToken(SCOPE)
      assert.strictEqual(Redacted.value(token.token), "loopback-at")
      assert.strictEqual(server.requests.length, 1)
      const after = JSON.parse(yield* Effect.orDie(fs.readFileString(path)))
      const rts = Object.values(after.RefreshToken).map((e: any) => e.secret)
      assert.includeMembers(rts, ["rt-user0", "loopback-rt"])
      // a second program finds the access token in the file
      const again = yield* credential({ cachePath: path, authorityHost: server.url }, IdentityNode.layer)
      assert.strictEqual(Redacted.value((yield* again.getToken(SCOPE)).token), "loopback-at")
      assert.strictEqual(server.requests.length, 1)
      // every refresh token expired on the server: AuthenticationRequiredError, nothing written
      rejectAll = true
      const before = yield* Effect.orDie(fs.readFileString(path))
      const rejected = yield* credential({ cachePath: path, authorityHost: server.url }, IdentityNode.layer)
      const error = yield* Effect.flip(rejected.getToken("https://graph.microsoft.com/.default", { claims: "{}" }))
      assert.strictEqual(error._tag, "AuthenticationRequiredError")
      assert.strictEqual(server.requests.length, 3) // the rotated token, then the original one
      assert.strictEqual(yield* Effect.orDie(fs.readFileString(path)), before)
    }).pipe(withEnv({})))

  it.scopedLive(
    "two processes writing back at once leave a valid file holding both tokens",
    () =>
      Effect.gen(function*() {
        const users = 2
        // a barrier: every process gets its answer at the same moment, so their write-backs overlap
        const pending: Array<() => void> = []
        const server = yield* listen((req, res) => {
          const user = (req.form.refresh_token ?? "").replace("rt-", "")
          pending.push(() =>
            sendJson(res, 200, {
              token_type: "Bearer",
              expires_in: 3599,
              access_token: `at-${user}`,
              refresh_token: `rotated-${user}`,
              scope: SCOPE,
              foci: "1"
            })
          )
          if (pending.length === users) { for (const answer of pending) answer() }
        })
        const original = cacheWith(users, "127.0.0.1")
        const { dir, fs, path } = yield* tempCache(original)
        const script = fileURLToPath(new URL("../support/sharedCacheWriter.ts", import.meta.url))
        const run = (i: number) =>
          Effect.async<{ code: number | null; out: string }>((resume) => {
            const child = spawn(
              process.execPath,
              [...guardedNodeArgs, script, path, server.url, `user${i}@contoso.com`, SCOPE],
              { stdio: ["ignore", "pipe", "pipe"], cwd: fileURLToPath(new URL("../..", import.meta.url)) }
            )
            let out = ""
            child.stdout.on("data", (d) => (out += String(d)))
            child.stderr.on("data", (d) => (out += String(d)))
            child.on("close", (code) => resume(Effect.succeed({ code, out })))
            return Effect.sync(() => child.kill())
          })
        const results = yield* Effect.forEach(Array.from({ length: users }, (_, i) => i), run, {
          concurrency: "unbounded"
        })
        for (const r of results) assert.strictEqual(r.code, 0, r.out)
        assert.strictEqual(server.requests.length, users)
        const after = JSON.parse(yield* Effect.orDie(fs.readFileString(path)))
        assert.deepStrictEqual(after.Account, original.Account)
        for (const [key, entry] of Object.entries(original.RefreshToken)) {
          assert.deepStrictEqual(after.RefreshToken[key], entry)
        }
        const secrets = Object.values(after.RefreshToken).map((e: any) => e.secret)
        for (let i = 0; i < users; i++) assert.include(secrets, `rotated-user${i}`)
        assert.strictEqual(Object.keys(after.AccessToken).length, users)
        assert.deepStrictEqual(yield* Effect.orDie(fs.readDirectory(dir)), ["msal.cache"])
      }),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "a stale lock and 8 writer processes, 15 rounds: exactly one breaks it at a time, no rotated refresh token is lost",
    () =>
      Effect.gen(function*() {
        const users = 8
        const rounds = 15
        const original = cacheWith(users, "127.0.0.1")
        const { fs, path } = yield* tempCache(original)
        const lock = `${path}.lockfile`
        const lost: Array<string> = []
        let round = 0
        let pending: Array<() => void> = []
        /** After round `r`, every user's refresh token from that round must be in the file. */
        const check = (r: number) => {
          const file = JSON.parse(readFileSync(path, "utf8"))
          const secrets = new Set(Object.values(file.RefreshToken).map((e: any) => e.secret))
          for (let i = 0; i < users; i++) {
            if (!secrets.has(`rotated-user${i}-r${r}`)) lost.push(`round ${r}: user${i}`)
          }
        }
        // a barrier per round: when every process asked for its token, the previous round's write-backs are done
        // (checked), a stale lock is put in place (a crashed writer's), and every process is answered at once
        const server = yield* listen((req, res) => {
          const user = /^(?:rt-|rotated-)(user\d+)/.exec(req.form.refresh_token ?? "")?.[1] ?? "unknown"
          pending.push(() =>
            sendJson(res, 200, {
              token_type: "Bearer",
              expires_in: 3599,
              access_token: `at-${user}-r${round}`,
              refresh_token: `rotated-${user}-r${round}`,
              scope: SCOPE,
              foci: "1"
            })
          )
          if (pending.length === users) {
            if (round > 0) check(round - 1)
            writeFileSync(lock, JSON.stringify({ owner: "crashed", createdAt: 0 }))
            const answers = pending
            pending = []
            for (const answer of answers) answer()
            round++
          }
        })
        const script = fileURLToPath(new URL("../support/sharedCacheWriter.ts", import.meta.url))
        const run = (i: number) =>
          Effect.async<{ code: number | null; out: string }>((resume) => {
            const child = spawn(
              process.execPath,
              [...guardedNodeArgs, script, path, server.url, `user${i}@contoso.com`, SCOPE, String(rounds)],
              { stdio: ["ignore", "pipe", "pipe"], cwd: fileURLToPath(new URL("../..", import.meta.url)), env: {} }
            )
            let out = ""
            child.stdout.on("data", (d) => (out += String(d)))
            child.stderr.on("data", (d) => (out += String(d)))
            child.on("close", (code) => resume(Effect.succeed({ code, out })))
            return Effect.sync(() => child.kill("SIGKILL"))
          })
        const results = yield* Effect.forEach(Array.from({ length: users }, (_, i) => i), run, {
          concurrency: "unbounded"
        })
        for (const r of results) assert.strictEqual(r.code, 0, r.out)
        assert.strictEqual(round, rounds)
        check(rounds - 1)
        assert.deepStrictEqual(lost, [], `${lost.length} rotated refresh tokens lost`)
        assert.isFalse(yield* Effect.orDie(fs.exists(`${lock}.break`)))
      }),
    { timeout: 180_000 }
  )
})

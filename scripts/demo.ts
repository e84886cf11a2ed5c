/**
 * `npm run demo`: gets real tokens through this library's credentials from a token server it starts itself on
 * 127.0.0.1, and prints a table of credential → outcome → time. Touches no other address.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as http from "node:http"
import type * as net from "node:net"
import { ClientSecretCredential, TokenCredential } from "../src/index.js"
import * as IdentityNode from "../src/node.js"

const TENANT = "demo-tenant"
const CLIENT = "demo-app"
const SECRET = "demo-secret"

const startTokenServer = Effect.acquireRelease(
  Effect.async<http.Server>((resume) => {
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c) => (body += c))
      req.on("end", () => {
        const form = new URLSearchParams(body)
        res.setHeader("content-type", "application/json")
        if (req.url !== `/${TENANT}/oauth2/v2.0/token` || form.get("client_secret") !== SECRET) {
          res.statusCode = 401
          res.end(JSON.stringify({
            error: "invalid_client",
            error_description: "AADSTS7000215: Invalid client secret provided.",
            error_codes: [7000215]
          }))
          return
        }
        res.end(JSON.stringify({
          token_type: "Bearer",
          expires_in: 3600,
          access_token: `demo-token-for-${form.get("scope")}`
        }))
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

interface Row {
  readonly credential: string
  readonly scenario: string
  readonly outcome: string
  readonly millis: number
}

const attempt = <R>(credential: string, scenario: string, program: Effect.Effect<string, unknown, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    const outcome = yield* program.pipe(
      Effect.catchAll((e) => Effect.succeed(`${(e as { _tag?: string })._tag}: ${(e as Error).message}`))
    )
    return { credential, scenario, outcome, millis: performance.now() - start } satisfies Row
  })

const describeToken = Effect.map(
  TokenCredential.getToken("https://vault.azure.net/.default"),
  (t) => `token (${Redacted.value(t.token).length} chars, ${t.token}) expires ${t.expiresOn.toString()}`
)

const main = Effect.gen(function*() {
  const server = yield* startTokenServer
  const authorityHost = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  const good = ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: CLIENT,
    clientSecret: Redacted.make(SECRET),
    authorityHost
  }).pipe(Layer.provide(IdentityNode.layer))
  const bad = ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: CLIENT,
    clientSecret: Redacted.make("wrong"),
    authorityHost
  }).pipe(Layer.provide(IdentityNode.layer))

  const rows: Array<Row> = []
  yield* Effect.gen(function*() {
    rows.push(yield* attempt("ClientSecretCredential", "first call (network)", describeToken))
    rows.push(yield* attempt("ClientSecretCredential", "second call (cache)", describeToken))
  }).pipe(Effect.provide(good))
  rows.push(yield* attempt("ClientSecretCredential", "wrong secret", describeToken.pipe(Effect.provide(bad))))

  const width = (k: keyof Row) => Math.max(k.length, ...rows.map((r) => String(r[k]).length))
  const line = (r: Record<keyof Row, string>) =>
    `${r.credential.padEnd(width("credential"))}  ${r.scenario.padEnd(width("scenario"))}  ${
      r.millis.padStart(8)
    }  ${r.outcome}`
  console.log(`token server on ${authorityHost} (loopback only)\n`)
  console.log(line({ credential: "credential", scenario: "scenario", millis: "time", outcome: "outcome" }))
  for (const r of rows) console.log(line({ ...r, millis: `${r.millis.toFixed(1)} ms` }))
  const ok = rows.filter((r) => r.outcome.startsWith("token")).length
  console.log(`\n${ok} tokens obtained, ${rows.length - ok} expected failures shown`)
})

Effect.runPromise(Effect.scoped(main)).catch((error) => {
  console.error(error)
  process.exit(1)
})

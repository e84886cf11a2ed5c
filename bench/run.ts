/**
 * The measurements (run by bench/index.ts with the test CA trusted). Prints a markdown table and writes
 * reports/bench.json.
 */
import { ClientSecretCredential as AzureClientSecretCredential } from "@azure/identity"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as https from "node:https"
import type * as net from "node:net"
import { join } from "node:path"
import { AccessToken, ClientSecretCredential, TokenCredential } from "../src/index.js"
import * as TokenCacheEngine from "../src/internal/tokenCache.js"
import * as IdentityNode from "../src/node.js"

const dir = process.argv[2]!
const CACHED_CALLS = Number(process.env.BENCH_CALLS ?? 200_000)
const COLD_CALLERS = Number(process.env.BENCH_COLD_CALLERS ?? 100)
const TENANT = "bench-tenant"
const CLIENT = "bench-client"
const SECRET = "bench-secret"
const SCOPE = "https://vault.azure.net/.default"

// ---------------------------------------------------------------------------------------------------------------
// The token server: OpenID metadata (MSAL reads it first) and the v2 token endpoint; answers after 20 ms so that
// concurrent cold callers overlap, and counts token requests.

let tokenRequests = 0
const server = https.createServer({
  cert: readFileSync(join(dir, "server.pem")),
  key: readFileSync(join(dir, "server.key"))
}, (req, res) => {
  let body = ""
  req.on("data", (c) => (body += c))
  req.on("end", () => {
    const base = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`
    res.setHeader("content-type", "application/json")
    if (req.method === "GET" && req.url?.includes("openid-configuration")) {
      res.end(JSON.stringify({
        token_endpoint: `${base}/${TENANT}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/${TENANT}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${base}/${TENANT}/oauth2/v2.0/devicecode`,
        end_session_endpoint: `${base}/${TENANT}/oauth2/v2.0/logout`,
        jwks_uri: `${base}/${TENANT}/discovery/v2.0/keys`,
        issuer: `${base}/${TENANT}/v2.0`,
        response_types_supported: ["code"],
        subject_types_supported: ["pairwise"],
        id_token_signing_alg_values_supported: ["RS256"]
      }))
      return
    }
    if (req.method === "POST" && req.url?.split("?")[0] === `/${TENANT}/oauth2/v2.0/token`) {
      tokenRequests++
      const form = new URLSearchParams(body)
      setTimeout(() => {
        if (form.get("client_secret") !== SECRET) {
          res.statusCode = 401
          res.end(JSON.stringify({ error: "invalid_client" }))
          return
        }
        res.end(JSON.stringify({
          token_type: "Bearer",
          expires_in: 3599,
          ext_expires_in: 3599,
          access_token: `bench-token-${tokenRequests}`
        }))
      }, 20)
      return
    }
    console.error("bench server: unexpected", req.method, req.url)
    res.statusCode = 404
    res.end(JSON.stringify({ error: "not_found" }))
  })
})
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const authorityHost = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`

// ---------------------------------------------------------------------------------------------------------------

interface Result {
  readonly library: string
  readonly mode: string
  readonly opsPerSecond: number
  readonly p50Micros: number
  readonly p99Micros: number
  readonly coldRequests: number
}

const percentile = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

const summarize = (samples: Float64Array, totalNanos: bigint) => {
  const sorted = samples.slice().sort()
  return {
    opsPerSecond: samples.length / (Number(totalNanos) / 1e9),
    p50Micros: percentile(sorted, 0.5) / 1000,
    p99Micros: percentile(sorted, 0.99) / 1000
  }
}

/** Times `n` sequential awaited calls, one sample per call. */
const timePromises = async (n: number, call: () => Promise<unknown>) => {
  for (let i = 0; i < 2000; i++) await call() // warm-up
  const samples = new Float64Array(n)
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint()
    await call()
    samples[i] = Number(process.hrtime.bigint() - t)
  }
  return summarize(samples, process.hrtime.bigint() - start)
}

const credentialLayer = () =>
  ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: CLIENT,
    clientSecret: Redacted.make(SECRET),
    authorityHost
  }).pipe(Layer.provide(IdentityNode.layer))

const results: Array<Result> = []
const azureFirst = process.env.BENCH_AZURE_FIRST === "1"

const benchOurs = async () => {
  const runtime = ManagedRuntime.make(credentialLayer())
  tokenRequests = 0
  await Promise.all(Array.from({ length: COLD_CALLERS }, () => runtime.runPromise(TokenCredential.getToken(SCOPE))))
  const coldRequests = tokenRequests

  // Inside an Effect program: how Effect code calls it.
  const inFiber = await runtime.runPromise(Effect.gen(function*() {
    const credential = yield* TokenCredential.TokenCredential
    for (let i = 0; i < 2000; i++) yield* credential.getToken(SCOPE)
    const samples = new Float64Array(CACHED_CALLS)
    const start = process.hrtime.bigint()
    for (let i = 0; i < CACHED_CALLS; i++) {
      const t = process.hrtime.bigint()
      yield* credential.getToken(SCOPE)
      samples[i] = Number(process.hrtime.bigint() - t)
    }
    return summarize(samples, process.hrtime.bigint() - start)
  }))
  results.push({ library: "effect-azure-identity", mode: "inside an Effect program", ...inFiber, coldRequests })

  // From Promise code: one runPromise per call (what non-Effect callers pay).
  const fromPromise = await timePromises(CACHED_CALLS, () => runtime.runPromise(TokenCredential.getToken(SCOPE)))
  results.push({ library: "effect-azure-identity", mode: "runtime.runPromise per call", ...fromPromise, coldRequests })
  await runtime.dispose()
}

const benchAzure = async () => {
  const credential = new AzureClientSecretCredential(TENANT, CLIENT, SECRET, {
    authorityHost,
    disableInstanceDiscovery: true
  })
  tokenRequests = 0
  await Promise.all(Array.from({ length: COLD_CALLERS }, () => credential.getToken(SCOPE)))
  const coldRequests = tokenRequests
  const cached = await timePromises(Math.min(CACHED_CALLS, 50_000), () => credential.getToken(SCOPE))
  results.push({ library: "@azure/identity 4.14.1", mode: "await getToken", ...cached, coldRequests })
}

if (azureFirst) {
  await benchAzure()
  await benchOurs()
} else {
  await benchOurs()
  await benchAzure()
}

server.close()

// ---------------------------------------------------------------------------------------------------------------
// The cache engine's eviction: the cost of a new key while many live tokens are held (on-behalf-of keeps one key per
// user). Amortised O(1): the same per key at 1,000 and at 60,000 held.

const EVICTION_HELD = [1_000, 10_000, 60_000]
const EVICTION_NEW = Number(process.env.BENCH_EVICTION_NEW ?? 10_000)

const evictionRow = (held: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const engine = yield* TokenCacheEngine.make({ partition: "bench", name: "Bench" })
    const now = yield* Clock.currentTimeMillis
    const live = Effect.succeed(
      AccessToken.make({ token: "t", obtainedAtMillis: now, expiresOnMillis: now + 3_600_000 })
    )
    for (let i = 0; i < held; i++) yield* engine.get(`held-${i}`, live, false)
    const start = process.hrtime.bigint()
    for (let i = 0; i < EVICTION_NEW; i++) yield* engine.get(`new-${i}`, live, false)
    const nanos = Number(process.hrtime.bigint() - start)
    return { held, newKeys: EVICTION_NEW, microsPerNewKey: nanos / EVICTION_NEW / 1000, size: engine.size() }
  })))

const eviction: Array<{ held: number; newKeys: number; microsPerNewKey: number; size: number }> = []
for (const held of EVICTION_HELD) eviction.push(await evictionRow(held))

const azure = results.find((r) => r.library.startsWith("@azure"))!
const fmt = (n: number, digits = 1) => n.toLocaleString("en-US", { maximumFractionDigits: digits })
console.log(
  `\nCached getToken (${fmt(CACHED_CALLS, 0)} calls each; @azure/identity ${
    fmt(Math.min(CACHED_CALLS, 50_000), 0)
  }), ` +
    `and token requests made by ${COLD_CALLERS} concurrent cold callers\n`
)
console.log(
  `| library | how it is called | cached ops/s | vs @azure/identity | p50 µs | p99 µs | requests for ${COLD_CALLERS} cold callers |`
)
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for (const r of results) {
  console.log(
    `| ${r.library} | ${r.mode} | ${fmt(r.opsPerSecond, 0)} | ${fmt(r.opsPerSecond / azure.opsPerSecond)}× | ${
      fmt(r.p50Micros, 2)
    } | ${fmt(r.p99Micros, 2)} | ${r.coldRequests} |`
  )
}
console.log(`\nCache engine: cost of a new key (${fmt(EVICTION_NEW, 0)} new keys) while live tokens are held\n`)
console.log("| live keys held | µs per new key | keys after |")
console.log("| ---: | ---: | ---: |")
for (const r of eviction) console.log(`| ${fmt(r.held, 0)} | ${fmt(r.microsPerNewKey, 2)} | ${fmt(r.size, 0)} |`)
mkdirSync("reports", { recursive: true })
writeFileSync(
  "reports/bench.json",
  JSON.stringify({ node: process.version, cachedCalls: CACHED_CALLS, results, eviction }, null, 2)
)
console.log("\nwritten to reports/bench.json")

/**
 * The measurements (run by bench/index.ts with the test CA trusted, `--expose-gc`). Prints one markdown table per
 * row of the performance page and writes reports/bench.json.
 *
 * `BENCH_ONLY=sdk,fiber` runs some rows only (ids: sdk, runtime, fiber, scopes, cold); `BENCH_CALLS` changes the
 * number of cached calls (default 100,000; `@azure/identity` makes at most 50,000); `BENCH_SCOPES` the number of
 * distinct scopes (default 1000).
 */
import { ClientSecretCredential as AzureClientSecretCredential } from "@azure/identity"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as https from "node:https"
import type * as net from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { PerformanceObserver } from "node:perf_hooks"
import { getHeapCodeStatistics, writeHeapSnapshot } from "node:v8"
import type * as LibraryModule from "../src/index.js"
import type { TokenCredential as TokenCredentialTypes } from "../src/index.js"
import { memoLimit } from "../src/internal/confidentialClient.js"
import * as TokenCacheEngine from "../src/internal/tokenCache.js"
import type * as NodeModule from "../src/node.js"
import { diff, objectBytes } from "./heapSnapshot.js"
import { makeRawClient } from "./rawClient.js"
import type { Entry, Report, Row } from "./report.js"

const dir = process.argv[2]!
const CACHED_CALLS = Number(process.env.BENCH_CALLS ?? 100_000)
const AZURE_CALLS = Math.min(CACHED_CALLS, 50_000)
const SCOPES = Number(process.env.BENCH_SCOPES ?? 1000)
const COLD_CALLERS = Number(process.env.BENCH_COLD_CALLERS ?? 100)
const ONLY = process.env.BENCH_ONLY?.split(",").map((s) => s.trim())
const want = (id: string) => ONLY === undefined || ONLY.includes(id)
/** `BENCH_PEERS=0`: this library only (to profile it). */
const PEERS = process.env.BENCH_PEERS !== "0"
const AZURE_SCOPES = Math.min(SCOPES, Number(process.env.BENCH_AZURE_SCOPES ?? 200))
const TENANT = "bench-tenant"
const CLIENT = "bench-client"
const SECRET = "bench-secret"
const SCOPE = "https://vault.azure.net/.default"
const gc = (globalThis as { gc?: () => void }).gc
/** `BENCH_BASE=<dir>`: a copy of the library's `src` from an earlier commit, measured in the scopes row too. */
const BASE = process.env.BENCH_BASE === undefined ? undefined : resolve(process.env.BENCH_BASE)
/**
 * The library as users get it: `BENCH_LIB=<dir>`, the build of `scripts/build.mjs` (bench/index.ts makes it), else
 * the sources through tsx (whose transform wraps every function made at run time in a `__name` call: closures made
 * per request cost more than in the published build).
 */
const LIB = process.env.BENCH_LIB
const Library: typeof LibraryModule = await import(LIB === undefined ? "../src/index.js" : join(LIB, "index.js"))
const IdentityNode: typeof NodeModule = await import(LIB === undefined ? "../src/node.js" : join(LIB, "node.js"))
const { AccessToken, AzureSdk, ClientSecretCredential, TokenCredential } = Library
const base = { index: Library, node: IdentityNode }
/**
 * `BENCH_HEAP_SNAPSHOTS=<dir>`: keep the heap snapshots taken before and after each client's scopes there (read them
 * with bench/heapDiff.ts): `before`/`after` ours, `base-` the BENCH_BASE copy, `raw-` the raw client, `azure-`
 * `@azure/identity`.
 */
const HEAP_SNAPSHOTS = process.env.BENCH_HEAP_SNAPSHOTS

// ---------------------------------------------------------------------------------------------------------------
// The token server: OpenID metadata (MSAL reads it first) and the v2 token endpoint. Tokens are about 1.1 KB, like
// Entra's. Answers at once, or after `delayMillis` (the cold row: so that concurrent callers overlap); counts token
// requests.

let tokenRequests = 0
let delayMillis = 0
const tokenFor = (n: number) => `bench-token-${n}-${"x".repeat(1100)}`
const server = https.createServer({
  cert: readFileSync(join(dir, "server.pem")),
  key: readFileSync(join(dir, "server.key")),
  keepAliveTimeout: 60_000
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
      const n = tokenRequests
      const form = new URLSearchParams(body)
      const answer = () => {
        if (form.get("client_secret") !== SECRET) {
          res.statusCode = 401
          res.end(JSON.stringify({ error: "invalid_client" }))
          return
        }
        res.end(JSON.stringify({
          token_type: "Bearer",
          expires_in: 3599,
          ext_expires_in: 3599,
          access_token: tokenFor(n)
        }))
      }
      if (delayMillis > 0) setTimeout(answer, delayMillis)
      else answer()
      return
    }
    console.error("bench server: unexpected", req.method, req.url)
    res.statusCode = 404
    res.end(JSON.stringify({ error: "not_found" }))
  })
})
let connections = 0
server.on("secureConnection", () => connections++)
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const port = (server.address() as net.AddressInfo).port
const authorityHost = `https://127.0.0.1:${port}`

// ---------------------------------------------------------------------------------------------------------------
// Timing helpers

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

/** CPU time of this process (the token server's included) since `start`, in milliseconds. */
const cpuSince = (start: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000
}

/**
 * Bytes of the heap's data spaces once the heap has settled: `heapUsed` without the code spaces, after three full
 * collections, each in a task of its own. Code is what the JIT compiles (and keeps, weakly, until a later collection)
 * while the row runs, a one-off per process rather than per token; counted, it moved the figure by up to 1 KB per
 * token from run to run. The tasks between collections let go what only a `WeakRef` (kept to the end of the task
 * that read it) or a pending `FinalizationRegistry` callback still holds, which the warm-up runs leave behind: freed
 * later, during the row, it made the figure smaller by as much, from run to run.
 */
const heapUsed = async () => {
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve))
    gc?.()
  }
  const code = getHeapCodeStatistics()
  return process.memoryUsage().heapUsed - code.code_and_metadata_size - code.bytecode_and_metadata_size
}

/**
 * Weighs what a client keeps for `n` tokens: call before its run, and the result after it. The heap row's figure is
 * a heap-snapshot diff (bench/heapSnapshot.ts): the objects present after the run and not before, minus those gone,
 * without what the JIT made (code, its metadata, feedback). `heapUsed` is given too: it counts the JIT's metadata
 * in the data spaces, which grows and shrinks during a run by up to ±200 bytes per token from run to run.
 */
const weigh = async (name: string) => {
  const dir = HEAP_SNAPSHOTS ?? mkdtempSync(join(tmpdir(), "eai-heap-"))
  const beforeFile = join(dir, `${name}before.heapsnapshot`)
  const heapBefore = await heapUsed()
  writeHeapSnapshot(beforeFile)
  return async (n: number) => {
    const heapAfter = await heapUsed()
    const afterFile = join(dir, `${name}after.heapsnapshot`)
    writeHeapSnapshot(afterFile)
    const objects = objectBytes(diff(beforeFile, afterFile)) / n
    if (HEAP_SNAPSHOTS === undefined) rmSync(dir, { recursive: true, force: true })
    return { heapBytesPerToken: objects, heapUsedBytesPerToken: (heapAfter - heapBefore) / n }
  }
}

const credentialLayer = () =>
  ClientSecretCredential.layer({
    tenantId: TENANT,
    clientId: CLIENT,
    clientSecret: Redacted.make(SECRET),
    authorityHost
  }).pipe(Layer.provide(IdentityNode.layer))

const azureCredential = () =>
  new AzureClientSecretCredential(TENANT, CLIENT, SECRET, { authorityHost, disableInstanceDiscovery: true })

// Flat strings, as a literal or a configured scope is: a template literal makes a rope, which the first Map lookup
// flattens into a copy (about 30 bytes per scope that the rows below would count as the client's).
const flat = (s: string) => Buffer.from(s).toString()
const scopeList = Array.from({ length: SCOPES }, (_, i) => flat(`https://resource-${i}.example.com/.default`))
// Before the timed and weighed scopes, each client gets WARM_SCOPES others: the JIT's code and one-off growth
// (the first connection, lazily built modules) are then not counted as per-token memory. No more than the credential
// remembers with the scopes (`memoLimit` request shapes): a memo that starts over in the middle of the row would hide
// what remembering a scope costs.
const WARM_SCOPES = Number(process.env.BENCH_WARM_SCOPES ?? Math.max(0, Math.min(200, memoLimit - SCOPES)))
const warmList = Array.from({ length: WARM_SCOPES }, (_, i) => flat(`https://warm-${i}.example.com/.default`))
/** `BENCH_JIT_WARMUP=<n>`: throwaway runs of the scopes row before it is measured (default 3; see the row). */
const JIT_ROUNDS = Number(process.env.BENCH_JIT_WARMUP ?? 3)
const jitList = Array.from({ length: SCOPES }, (_, i) => flat(`https://jit-${i}.example.com/.default`))

const OURS = "effect-azure-identity"
const AZURE = "@azure/identity 4.14"
const rows: Array<Row> = []
const log = (s: string) => console.error(`bench: ${s}`)

// ---------------------------------------------------------------------------------------------------------------
// Rows

if (want("sdk")) {
  log("cached getToken through AzureSdk.toTokenCredential")
  const credential = AzureSdk.toTokenCredential(credentialLayer())
  await credential.getToken(SCOPE)
  const ours = await timePromises(CACHED_CALLS, () => credential.getToken(SCOPE))
  await credential.close()
  const azure = azureCredential()
  await azure.getToken(SCOPE)
  const peer = PEERS ? await timePromises(AZURE_CALLS, () => azure.getToken(SCOPE)) : undefined
  rows.push({
    id: "sdk",
    title: "cached getToken through AzureSdk.toTokenCredential (Promise callers, Azure SDK clients)",
    unit: "ops/s",
    better: "higher",
    goal: "≥ 20× @azure/identity (≈ 200,000/s), p50 ≤ 5 µs",
    entries: [
      { who: OURS, how: "AzureSdk.toTokenCredential(layer).getToken", value: ours.opsPerSecond, ...ours },
      ...(peer === undefined
        ? []
        : [{ who: AZURE, how: "await credential.getToken", value: peer.opsPerSecond, ...peer }])
    ]
  })
}

if (want("runtime") || want("fiber") || want("cold") || want("scopes")) {
  const runtime = ManagedRuntime.make(credentialLayer())
  await runtime.runPromise(TokenCredential.getToken(SCOPE))

  if (want("runtime")) {
    log("cached getToken through ManagedRuntime.runPromiseExit")
    const ours = await timePromises(CACHED_CALLS, () => runtime.runPromiseExit(TokenCredential.getToken(SCOPE)))
    rows.push({
      id: "runtime",
      title: "cached getToken through a plain ManagedRuntime.runPromiseExit per call",
      unit: "ops/s",
      better: "higher",
      goal: "(what the interop layer would add on top)",
      entries: [{
        who: OURS,
        how: "runtime.runPromiseExit(TokenCredential.getToken)",
        value: ours.opsPerSecond,
        ...ours
      }]
    })
  }

  if (want("fiber")) {
    log("cached getToken in one fiber")
    const loop = (credential: TokenCredentialTypes.Service) =>
      Effect.gen(function*() {
        for (let i = 0; i < 5000; i++) yield* credential.getToken(SCOPE)
        // the mean without per-call clock samples, then the percentiles with them
        const cpu = process.cpuUsage()
        const start = process.hrtime.bigint()
        for (let i = 0; i < CACHED_CALLS; i++) yield* credential.getToken(SCOPE)
        const total = process.hrtime.bigint() - start
        const used = process.cpuUsage(cpu)
        const n = Math.min(CACHED_CALLS, 100_000)
        const samples = new Float64Array(n)
        for (let i = 0; i < n; i++) {
          const t = process.hrtime.bigint()
          yield* credential.getToken(SCOPE)
          samples[i] = Number(process.hrtime.bigint() - t)
        }
        const sampled = summarize(samples, 1n)
        const opsPerSecond = CACHED_CALLS / (Number(total) / 1e9)
        return {
          opsPerSecond,
          meanMicros: 1e6 / opsPerSecond,
          cpuMicros: (used.user + used.system) / CACHED_CALLS,
          p50Micros: sampled.p50Micros,
          p99Micros: sampled.p99Micros
        }
      })
    const ours = await runtime.runPromise(Effect.flatMap(TokenCredential.TokenCredential, loop))
    // managed identity (App Service source) and the default chain whose winner it is: the hot path of a service on
    // Azure; their one token request is answered in memory (the cached calls never reach it)
    const onAzure = (layer: Layer.Layer<TokenCredentialTypes.TokenCredential, never, any>) => {
      const expiresOn = String(Math.floor(Date.now() / 1000) + 3600)
      const msi = Library.TestHttpClient.layer(() =>
        Library.TestHttpClient.json(200, {
          access_token: "x".repeat(1100),
          expires_on: expiresOn,
          resource: "https://vault.azure.net"
        })
      )
      const config = ConfigProvider.fromMap(
        new Map([["IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"], ["IDENTITY_HEADER", "bench-header"]])
      )
      return ManagedRuntime.make(
        layer.pipe(
          Layer.provide(Layer.mergeAll(IdentityNode.layer, msi)),
          Layer.provide(Layer.setConfigProvider(config))
        ) as Layer.Layer<TokenCredentialTypes.TokenCredential>
      )
    }
    const extra: Array<Entry> = []
    for (
      const [who, layer] of [
        ["ManagedIdentityCredential", Library.ManagedIdentityCredential.layerConfig()],
        ["DefaultAzureCredential (winner: managed identity)", Library.DefaultAzureCredential.layer()]
      ] as const
    ) {
      const rt = onAzure(layer)
      const r = await rt.runPromise(Effect.flatMap(TokenCredential.TokenCredential, loop))
      await rt.dispose()
      extra.push({
        who: `${OURS}: ${who}`,
        how: `yield* credential.getToken; CPU ${r.cpuMicros.toFixed(2)} µs per call`,
        value: r.opsPerSecond,
        ...r
      })
    }
    rows.push({
      id: "fiber",
      title: "cached getToken in one fiber (yield* credential.getToken)",
      unit: "ops/s",
      better: "higher",
      goal: "mean ≤ 1 µs",
      entries: [
        {
          who: OURS,
          how: `ClientSecretCredential, yield* credential.getToken in a loop; CPU ${
            ours.cpuMicros.toFixed(2)
          } µs per call`,
          value: ours.opsPerSecond,
          ...ours
        },
        ...extra
      ]
    })
  }

  if (want("cold")) {
    log(`${COLD_CALLERS} concurrent cold callers`)
    delayMillis = 20
    const cold = ManagedRuntime.make(credentialLayer())
    tokenRequests = 0
    await Promise.all(Array.from({ length: COLD_CALLERS }, () => cold.runPromise(TokenCredential.getToken(SCOPE))))
    const ours = tokenRequests
    await cold.dispose()
    const azure = azureCredential()
    await azure.getToken("https://warm-up.example.com/.default") // MSAL's metadata request is not a token request
    tokenRequests = 0
    await Promise.all(Array.from({ length: COLD_CALLERS }, () => azure.getToken(SCOPE)))
    const peer = tokenRequests
    delayMillis = 0
    rows.push({
      id: "cold",
      title: `token requests made by ${COLD_CALLERS} concurrent cold callers`,
      unit: "requests",
      better: "lower",
      goal: "1",
      entries: [{ who: OURS, how: "runtime.runPromise", value: ours }, {
        who: AZURE,
        how: "await credential.getToken",
        value: peer
      }]
    })
  }

  if (want("scopes")) {
    log(`${SCOPES} distinct scopes, one after another`)
    const entries: Array<Entry> = []
    // Each client's 1000 scopes are acquired one after another on a fresh credential (a fresh raw client), after
    // WARM_SCOPES others (the connection open, the JIT warm). First one weighed pass per client, alone: the heap
    // snapshots around it count what it keeps per token. Then timed rounds (`BENCH_SCOPE_ROUNDS`, default 11, after
    // an untimed one), each with fresh scopes and fresh clients, the clients one after the other, in an order that
    // alternates from round to round: the machine is shared (two cores), and runs of 1000 swung by 2× from round to
    // round; a round's clients ran within a second of each other. Each entry is the median round, with the ratio to
    // the raw client of every round beside it.
    // `BENCH_SCOPE_BLOCK=<n>` makes the clients take turns by blocks of n scopes within a round (the order rotating
    // every block). Not the default: with small blocks, part of one client's garbage collection runs in the other's
    // turn (V8 posts scavenges and incremental marking as tasks, which run in whichever turn comes next), which
    // favours the client that allocates more (ours measured 1.05–1.17× the raw client in turns of 100, 1.25× in
    // turns of 1000, same code, same hour).
    const ROUNDS = Math.max(1, Number(process.env.BENCH_SCOPE_ROUNDS ?? 11))
    const BLOCK = Math.max(1, Number(process.env.BENCH_SCOPE_BLOCK ?? SCOPES))
    // each pass its own scopes (flat strings, as `flat` says); the weighed pass's are the list itself
    const tag = (scope: string, pass: number) => pass === 0 ? scope : flat(`${scope}?round=${pass}`)
    /** A client ready for its scopes: `take` acquires some, one after another; `close` drops it. */
    interface Taker {
      readonly take: (scopes: ReadonlyArray<string>) => Promise<void>
      readonly close: () => Promise<void>
    }
    interface Client {
      readonly who: string
      readonly how: string
      readonly prefix: string
      /** A fresh client, warmed up with `warm` (and, before the first pass, the JIT warm-up). */
      readonly open: (warm: ReadonlyArray<string>, pass: number) => Promise<Taker>
      /** This client's variant of a scope (so that two clients never ask for the same one). */
      readonly scope: (scope: string) => string
    }
    const oursClient = (library: typeof base, who: string, rename: (scope: string) => string): Client => {
      const layer = () =>
        library.index.ClientSecretCredential.layer({
          tenantId: TENANT,
          clientId: CLIENT,
          clientSecret: Redacted.make(SECRET),
          authorityHost
        }).pipe(Layer.provide(library.node.layer))
      return {
        who,
        how: "yield* credential.getToken",
        prefix: who === OURS ? "" : "base-",
        scope: rename,
        open: async (warm, pass) => {
          // JIT warm-up: the same workload on credentials that are then dropped, so that the code the JIT compiles
          // for it, and its metadata (feedback, deoptimisation data, the maps' lists of dependent code: in the data
          // spaces too), is not counted per token. Three of them: a closure of the first credential has code
          // specialised to its context, which a second credential's closure cannot use; the JIT then compiles the
          // code every credential shares. With one warm-up credential, 300–400 functions were compiled during the
          // weighed scopes (about 100 bytes per token of metadata in the data spaces); with three, almost none.
          for (let warmRound = 0; pass === 0 && warmRound < JIT_ROUNDS; warmRound++) {
            const throwaway = ManagedRuntime.make(layer())
            await throwaway.runPromise(Effect.flatMap(
              library.index.TokenCredential.TokenCredential,
              (credential) => Effect.forEach(jitList, (scope) => credential.getToken(rename(scope)), { discard: true })
            ))
            await throwaway.dispose()
          }
          const fresh = ManagedRuntime.make(layer())
          const credential = await fresh.runPromise(library.index.TokenCredential.TokenCredential)
          await fresh.runPromise(Effect.forEach(warm, (scope) => credential.getToken(scope), { discard: true }))
          return {
            take: (scopes) =>
              fresh.runPromise(Effect.gen(function*() {
                for (const scope of scopes) yield* credential.getToken(scope)
              })),
            close: () => fresh.dispose()
          }
        }
      }
    }
    // a raw node:https client on one keep-alive connection, keeping the tokens in a Map
    const rawClient: Client = {
      who: "raw node:https",
      how: "keep-alive agent",
      prefix: "raw-",
      scope: (scope) => scope.replace("resource-", "raw-"),
      open: async (warm) => {
        const { close, post } = makeRawClient({
          protocol: "https",
          port,
          tenant: TENANT,
          clientId: CLIENT,
          clientSecret: SECRET
        })
        for (const scope of warm) await post(scope)
        return {
          take: async (scopes) => {
            for (const scope of scopes) await post(scope)
          },
          close: async () => close()
        }
      }
    }
    const clients: Array<Client> = []
    if (BASE !== undefined) {
      const baseLibrary = { index: await import(`${BASE}/src/index.ts`), node: await import(`${BASE}/src/node.ts`) }
      clients.push(
        oursClient(baseLibrary, `${OURS} (before: ${process.env.BENCH_BASE})`, (s) => s.replace("resource-", "before-"))
      )
    }
    clients.push(oursClient(base, OURS, (s) => s))
    if (PEERS) clients.push(rawClient)
    const scopesOf = (client: Client, pass: number) => scopeList.map((scope) => tag(client.scope(scope), pass))
    const warmOf = (client: Client, pass: number) => warmList.map((scope) => tag(client.scope(scope), pass))

    // the weighed pass: each client alone
    const heapOf = new Map<string, { heapBytesPerToken: number; heapUsedBytesPerToken: number }>()
    for (const client of clients) {
      const taker = await client.open(warmOf(client, 0), 0)
      // made before the heap is weighed: the strings of a scope are the caller's, not the client's
      const scopes = scopesOf(client, 0)
      const weighed = await weigh(client.prefix)
      await taker.take(scopes)
      heapOf.set(client.who, await weighed(SCOPES))
      await taker.close()
    }

    // the timed rounds: turns by blocks, after one untimed round (the heap snapshots leave the JIT's state and the
    // heap cold: the first round after them was 1.5× slower for every client)
    const roundsOf = new Map<
      string,
      Array<{ millis: number; cpuMillis: number; connections: number; gcMillis: number }>
    >()
    // garbage-collection pauses of the main thread, summed per turn (they are in its time)
    let gcMillis = 0
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) gcMillis += entry.duration
    })
    gcObserver.observe({ entryTypes: ["gc"] })
    for (let round = 1; round <= ROUNDS + 1; round++) {
      const takers = await Promise.all(clients.map((client) => client.open(warmOf(client, round), round)))
      const times = clients.map(() => ({ millis: 0, cpuMillis: 0, connections: 0, gcMillis: 0 }))
      const lists = clients.map((client) => scopesOf(client, round))
      for (let from = 0, block = 0; from < SCOPES; from += BLOCK, block++) {
        for (let turn = 0; turn < clients.length; turn++) {
          const i = (round + block + turn) % clients.length
          const scopes = lists[i]!.slice(from, from + BLOCK)
          connections = 0
          const cpu = process.cpuUsage()
          const start = performance.now()
          const gcBefore = gcMillis
          await takers[i]!.take(scopes)
          times[i]!.millis += performance.now() - start
          times[i]!.cpuMillis += cpuSince(cpu)
          times[i]!.connections += connections
          // the observer is told in a later task
          await new Promise<void>((resolve) => setImmediate(resolve))
          times[i]!.gcMillis += gcMillis - gcBefore
        }
      }
      for (const taker of takers) await taker.close()
      if (round === 1) continue
      clients.forEach((client, i) => {
        const list = roundsOf.get(client.who) ?? []
        list.push(times[i]!)
        roundsOf.set(client.who, list)
      })
    }
    gcObserver.disconnect()
    const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const rawRounds = roundsOf.get(rawClient.who)
    for (const client of clients) {
      const list = roundsOf.get(client.who)!
      const millis = median(list.map((r) => r.millis))
      const cpuMillis = median(list.map((r) => r.cpuMillis)) / SCOPES
      const ratios = rawRounds === undefined || client === rawClient
        ? ""
        : `; ×raw by round ${list.map((r, i) => (r.millis / rawRounds[i]!.millis).toFixed(2)).join(", ")}`
      const connectionsOpened = list.reduce((n, r) => n + r.connections, 0)
      const gcPauses = list.map((r) => Math.round(r.gcMillis)).join(", ")
      entries.push({
        who: client.who,
        how: `${client.how}; ${connectionsOpened} TLS connections during ${list.length} rounds; CPU ${
          cpuMillis.toFixed(3)
        } ms per token; median of ${list.length} rounds in turns of ${BLOCK} scopes (${
          list.map((r) => Math.round(r.millis)).join(", ")
        } ms; GC pauses ${gcPauses} ms)${ratios}`,
        value: millis,
        cpuMillisPerOp: cpuMillis,
        ...heapOf.get(client.who)
      })
    }
    // @azure/identity: its in-memory cache is searched linearly on every call (quadratic over distinct scopes:
    // 1000 take about 50 s here), so it gets the first AZURE_SCOPES only
    if (PEERS) {
      const azure = azureCredential()
      for (const scope of warmList.slice(0, 20)) await azure.getToken(scope)
      const weighed = await weigh("azure-")
      const start = performance.now()
      for (const scope of scopeList.slice(0, AZURE_SCOPES)) await azure.getToken(scope)
      const millis = performance.now() - start
      entries.push({
        who: `${AZURE} (first ${AZURE_SCOPES} scopes only)`,
        how: "await credential.getToken",
        value: millis,
        ...await weighed(AZURE_SCOPES)
      })
    }
    rows.push({
      id: "scopes",
      title: `${SCOPES} distinct scopes acquired one after another (ms)`,
      unit: "ms",
      better: "lower",
      goal: "≤ 1.3× the raw client",
      entries
    })
    rows.push({
      id: "heap",
      title: `heap per cached token (bytes of the objects kept, by heap-snapshot diff; the token string itself is ${
        tokenFor(1).length
      } characters)`,
      unit: "bytes",
      better: "lower",
      goal: "≤ 2 KB (azure-identity for Python: 2.3 KB)",
      entries: entries.map((e) => ({
        who: e.who,
        how: `${e.how.replace(/; \d+ TLS connections.*$/, "")}; heapUsed ${Math.round(e.heapUsedBytesPerToken!)}`,
        value: e.heapBytesPerToken!
      }))
    })
  }
  await runtime.dispose()
}

server.close()
server.closeAllConnections()

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

if (want("eviction")) {
  const eviction: Array<{ held: number; newKeys: number; microsPerNewKey: number; size: number }> = []
  for (const held of EVICTION_HELD) eviction.push(await evictionRow(held))
  rows.push({
    id: "eviction",
    title: `Cache engine: cost of a new key (${EVICTION_NEW} new keys) while live tokens are held`,
    unit: "µs per new key",
    better: "lower",
    goal: "flat: the same at 1,000 and 60,000 held keys (amortised O(1) eviction)",
    entries: eviction.map((e) => ({
      who: "effect-azure-identity",
      how: `${e.held} keys held (${e.size} after)`,
      value: e.microsPerNewKey
    }))
  })
}

const fmt = (n: number | undefined, digits = 1) =>
  n === undefined ? "" : n.toLocaleString("en-US", { maximumFractionDigits: digits })
for (const row of rows) {
  console.log(`\n### ${row.title}\n\ngoal: ${row.goal}\n`)
  console.log("| who | how | value | p50 µs | p99 µs |")
  console.log("| --- | --- | ---: | ---: | ---: |")
  for (const e of row.entries) {
    console.log(
      `| ${e.who} | ${e.how} | ${fmt(e.value, 0)} ${row.unit} | ${fmt(e.p50Micros, 2)} | ${fmt(e.p99Micros, 2)} |`
    )
  }
}
const report: Report = {
  node: process.version,
  date: new Date().toISOString(),
  cachedCalls: CACHED_CALLS,
  azureCalls: AZURE_CALLS,
  scopes: SCOPES,
  rows
}
mkdirSync("reports", { recursive: true })
const previous = (() => {
  try {
    return JSON.parse(readFileSync("reports/bench.json", "utf8")) as Report
  } catch {
    return undefined
  }
})()
// a partial run (BENCH_ONLY) keeps the other rows of the previous report
const merged = ONLY === undefined || previous === undefined ? report : {
  ...report,
  rows: [...previous.rows.filter((r) => !rows.some((x) => x.id === r.id)), ...rows]
}
writeFileSync("reports/bench.json", JSON.stringify(merged, null, 2))
console.log("\nwritten to reports/bench.json")

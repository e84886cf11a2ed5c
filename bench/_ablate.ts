import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Undici from "@effect/platform-node/Undici"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { fork } from "node:child_process"
import * as http from "node:http"
import { Session } from "node:inspector/promises"
import { writeFileSync } from "node:fs"
import { ClientSecretCredential, TokenCredential } from "../src/index.js"
import * as IdentityNode from "../src/node.js"
import * as Aad from "../src/internal/aad.js"
import * as Http from "../src/internal/http.js"
import * as Scrub from "../src/internal/scrub.js"
import * as Lean from "../src/internal/nodeTransport.js"

const N = Number(process.argv[2] ?? 1000)
const ROUNDS = Number(process.argv[3] ?? 3)
const ONLY = process.env.MODES?.split(",")
const TENANT = "bench-tenant"
const serverSource = `
const http = require("node:http")
let n = 0
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  let body = ""
  req.on("data", (c) => (body += c))
  req.on("end", () => {
    n++
    res.setHeader("content-type", "application/json")
    res.end(JSON.stringify({ token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599,
      access_token: "bench-token-" + n + "-" + "x".repeat(1100) }))
  })
})
server.listen(0, "127.0.0.1", () => process.send(server.address().port))
`
const child = fork("-e", [serverSource], { execArgv: ["-e", serverSource], stdio: ["ignore", "inherit", "inherit", "ipc"] })
const port = await new Promise<number>((resolve) => child.once("message", (m) => resolve(m as number)))
const authorityHost = `http://127.0.0.1:${port}`
const url = `${authorityHost}/${TENANT}/oauth2/v2.0/token`
const form = (scope: string) => ({ client_id: "c", client_secret: "s", grant_type: "client_credentials", scope })

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
const rawPost = (scope: string) =>
  new Promise<void>((resolve, reject) => {
    const body = new URLSearchParams(form(scope)).toString()
    const req = http.request({
      host: "127.0.0.1", port, method: "POST", path: `/${TENANT}/oauth2/v2.0/token`, agent,
      headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) }
    }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (c) => (text += c))
      res.on("end", () => { JSON.parse(text); resolve() })
    })
    req.on("error", reject)
    req.end(body)
  })
const undiciAgent = new Undici.Agent()
const undiciPost = async (scope: string) => {
  const res = await undiciAgent.request({
    origin: authorityHost, path: `/${TENANT}/oauth2/v2.0/token`, method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form(scope)).toString()
  })
  JSON.parse(await res.body.text())
}

const platformRt = ManagedRuntime.make(NodeHttpClient.layerUndici)
const platformClient = await platformRt.runPromise(HttpClient.HttpClient)
const entra = Aad.entraClient(platformClient)
const leanAgent = new Undici.Agent()
const lean = Lean.make(leanAgent)
const leanEntra = Aad.entraClient(lean)
const platformReq = (scope: string) => HttpClientRequest.post(url).pipe(HttpClientRequest.bodyUrlParams(form(scope)))

const credRt = ManagedRuntime.make(ClientSecretCredential.layer({
  tenantId: TENANT, clientId: "c", clientSecret: Redacted.make("s"), authorityHost
}).pipe(Layer.provide(IdentityNode.layer)))
const credential = await credRt.runPromise(TokenCredential.TokenCredential)

type Mode = (scopes: ReadonlyArray<string>) => Promise<unknown>
const loopEffect = (f: (s: string) => Effect.Effect<unknown, unknown>): Mode => (scopes) =>
  platformRt.runPromise(Effect.forEach(scopes, f, { discard: true }) as Effect.Effect<void>)
const modes: Record<string, Mode> = {
  raw: async (scopes) => { for (const s of scopes) await rawPost(s) },
  undici: async (scopes) => { for (const s of scopes) await undiciPost(s) },
  platformText: loopEffect((s) => Effect.flatMap(platformClient.execute(platformReq(s)), (r) => r.text)),
  platformNoSpan: loopEffect((s) => Effect.flatMap(platformClient.execute(platformReq(s)), (r) => r.arrayBuffer).pipe(Effect.withTracerEnabled(false))),
  platformAB: loopEffect((s) => Effect.flatMap(platformClient.execute(platformReq(s)), (r) => r.arrayBuffer)),
  leanAB: loopEffect((s) => Effect.flatMap(lean.execute(platformReq(s)), (r) => r.arrayBuffer)),
  leanSend: loopEffect((s) => Http.sendWithRetry(leanEntra, Effect.sync(() => platformReq(s)), Http.defaultRetryPolicy).pipe(Scrub.withAllHeadersRedacted)),
  leanToken: loopEffect((s) => Aad.requestToken(leanEntra, { credential: "X", authorityHost, tenantId: TENANT, scopes: [s], form: Effect.succeed({ client_id: "c", grant_type: "client_credentials", client_secret: Redacted.make("s") }) })),
  entraAB: loopEffect((s) => Effect.flatMap(entra.execute(platformReq(s)), (r) => r.arrayBuffer).pipe(Scrub.withAllHeadersRedacted)),
  sendWithRetry: loopEffect((s) => Http.sendWithRetry(entra, Effect.sync(() => platformReq(s)), Http.defaultRetryPolicy).pipe(Scrub.withAllHeadersRedacted)),
  requestToken: loopEffect((s) => Aad.requestToken(entra, { credential: "X", authorityHost, tenantId: TENANT, scopes: [s], form: Effect.succeed({ client_id: "c", grant_type: "client_credentials", client_secret: Redacted.make("s") }) })),
  credential: (scopes) => credRt.runPromise(Effect.forEach(scopes, (s) => credential.getToken(s), { discard: true })),
  fresh: async (scopes) => {
    const rt = ManagedRuntime.make(ClientSecretCredential.layer({
      tenantId: TENANT, clientId: "c", clientSecret: Redacted.make("s"), authorityHost
    }).pipe(Layer.provide(IdentityNode.layer)))
    const c = await rt.runPromise(TokenCredential.TokenCredential)
    await rt.runPromise(Effect.forEach(scopes.slice(0, 200).map((s) => s + "/warm"), (s) => c.getToken(s), { discard: true }))
    const cpu = process.cpuUsage()
    await rt.runPromise(Effect.forEach(scopes, (s) => c.getToken(s), { discard: true }))
    const u = process.cpuUsage(cpu)
    await rt.dispose()
    return (u.user + u.system) / 1000 / scopes.length
  }
}
const names = Object.keys(modes).filter((m) => ONLY === undefined || ONLY.includes(m))
let k = 0
const scopesFor = () => { k++; return Array.from({ length: N }, (_, i) => `https://r${k}-${i}.example.com/.default`) }
for (const m of names) await modes[m]!(scopesFor())
const results: Record<string, Array<number>> = {}
for (let round = 0; round < ROUNDS; round++) {
  for (const m of names) {
    const scopes = scopesFor()
    const cpu = process.cpuUsage()
    const start = performance.now()
    const own = await modes[m]!(scopes)
    const wall = performance.now() - start
    const used = process.cpuUsage(cpu)
    ;(results[m] ??= []).push(typeof own === "number" ? own : (used.user + used.system) / 1000 / N)
    void wall
  }
}
if (process.env.PROFILE !== undefined) {
  const session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.setSamplingInterval", { interval: 200 })
  await session.post("Profiler.start")
  await modes[names[0]!]!(scopesFor())
  const { profile } = await session.post("Profiler.stop")
  writeFileSync(process.env.PROFILE, JSON.stringify(profile))
}
for (const m of names) {
  const v = results[m]!.slice().sort((a, b) => a - b)
  console.log(`${m.padEnd(16)} cpu/req min ${v[0]!.toFixed(3)} med ${v[Math.floor(v.length / 2)]!.toFixed(3)} ms  [${results[m]!.map((x) => x.toFixed(3)).join(" ")}]`)
}
await credRt.dispose(); await platformRt.dispose(); agent.destroy(); await undiciAgent.close(); child.kill()

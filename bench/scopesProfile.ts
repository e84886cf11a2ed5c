/**
 * CPU per token request, client side only: the token server runs in a child process, so `process.cpuUsage` of this
 * process counts the client alone. Runs, alternating, a raw `node:http` keep-alive client and this library
 * (`ClientSecretCredential` with `effect-azure-identity/node`, a fresh credential per round: 200 warm-up scopes,
 * then `N` distinct scopes, as in the bench's row), and prints CPU and wall time per request for each round.
 *
 * `npx tsx bench/scopesProfile.ts [N] [rounds]`
 * - `SCOPES_PROFILE=<file>` writes a V8 CPU profile of the library's last round only (read it with
 *   `npx tsx bench/profileSummary.ts <file>`).
 * - `SCOPES_LIB=<dir>` measures a build of the library (`node scripts/build.mjs <dir> --no-declarations`) instead of
 *   `src` through tsx (whose transform adds a `__name` call per closure).
 * - `SCOPES_BASE=<dir>` also runs another copy of the library's `src` (e.g. an earlier commit's, from
 *   `git archive <commit> src | tar -x -C tmp/base`) in the same rounds: before and after in one run.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { fork } from "node:child_process"
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { resolve } from "node:path"
import * as Current from "../src/index.js"
import * as CurrentNode from "../src/node.js"
import { makeRawClient } from "./rawClient.js"

const N = Number(process.argv[2] ?? 1000)
const ROUNDS = Number(process.argv[3] ?? 3)
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
const child = fork("-e", [serverSource], {
  execArgv: ["-e", serverSource],
  stdio: ["ignore", "inherit", "inherit", "ipc"]
})
const port = await new Promise<number>((resolve) => child.once("message", (m) => resolve(m as number)))
const authorityHost = `http://127.0.0.1:${port}`

const measure = async (run: () => Promise<void>) => {
  const cpu = process.cpuUsage()
  const start = performance.now()
  await run()
  const wall = performance.now() - start
  const used = process.cpuUsage(cpu)
  return { cpuMs: (used.user + used.system) / 1000 / N, wallMs: wall / N }
}

// raw node:http, one keep-alive socket, tokens in a Map
const { close, post } = makeRawClient({ protocol: "http", port, tenant: TENANT, clientId: "c", clientSecret: "s" })

type Library = { readonly index: typeof Current; readonly node: typeof CurrentNode }
const LIB = process.env.SCOPES_LIB === undefined ? undefined : resolve(process.env.SCOPES_LIB)
const libraries: Array<[string, Library]> = [[
  "ours",
  LIB === undefined
    ? { index: Current, node: CurrentNode }
    : {
      index: await import(`${LIB}/index.js`) as typeof Current,
      node: await import(`${LIB}/node.js`) as typeof CurrentNode
    }
]]
if (process.env.SCOPES_BASE !== undefined) {
  const base = resolve(process.env.SCOPES_BASE)
  libraries.unshift(["before", {
    index: await import(`${base}/src/index.ts`) as typeof Current,
    node: await import(`${base}/src/node.ts`) as typeof CurrentNode
  }])
}

let round = 0
/** CPU and wall time per request of `N` scopes on a fresh credential, after 200 warm-up scopes. */
const ours = async (library: Library, profile: string | undefined) => {
  const runtime = ManagedRuntime.make(
    library.index.ClientSecretCredential.layer({
      tenantId: TENANT,
      clientId: "c",
      clientSecret: Redacted.make("s"),
      authorityHost
    }).pipe(Layer.provide(library.node.layer))
  )
  const credential = await runtime.runPromise(library.index.TokenCredential.TokenCredential)
  const run = (scopes: ReadonlyArray<string>) =>
    runtime.runPromise(Effect.forEach(scopes, (scope) => credential.getToken(scope), { discard: true }))
  await run(scopesFor(`warm-${round}`).slice(0, 200))
  const session = profile === undefined ? undefined : new Session()
  if (session !== undefined) {
    session.connect()
    await session.post("Profiler.enable")
    await session.post("Profiler.setSamplingInterval", { interval: 100 })
    await session.post("Profiler.start")
  }
  const result = await measure(() => run(scopesFor(`ours-${round}`)))
  if (session !== undefined) {
    const { profile: data } = await session.post("Profiler.stop")
    writeFileSync(profile!, JSON.stringify(data))
    session.disconnect()
  }
  await runtime.dispose()
  return result
}

const scopesFor = (tag: string) => Array.from({ length: N }, (_, i) => `https://${tag}-${i}.example.com/.default`)
for (const scope of scopesFor("warm-raw").slice(0, 200)) await post(scope)

const profileFile = process.env.SCOPES_PROFILE
const cpu: Record<string, Array<number>> = {}
for (round = 0; round < ROUNDS; round++) {
  const line: Array<string> = []
  const raw = await measure(async () => {
    for (const scope of scopesFor(`raw-${round}`)) await post(scope)
  })
  ;(cpu.raw ??= []).push(raw.cpuMs)
  line.push(`raw cpu ${raw.cpuMs.toFixed(3)} wall ${raw.wallMs.toFixed(3)}`)
  for (const [name, library] of libraries) {
    const last = round === ROUNDS - 1 && name === "ours" ? profileFile : undefined
    const result = await ours(library, last)
    ;(cpu[name] ??= []).push(result.cpuMs)
    line.push(
      `${name} cpu ${result.cpuMs.toFixed(3)} wall ${result.wallMs.toFixed(3)} (${
        (result.cpuMs / raw.cpuMs).toFixed(2)
      }× cpu)`
    )
  }
  console.log(`round ${round} (ms per request): ${line.join(" | ")}`)
}
const median = (xs: Array<number>) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log(
  `median CPU per request: ${Object.entries(cpu).map(([name, xs]) => `${name} ${median(xs).toFixed(3)} ms`).join(", ")}`
)
close()
child.kill()

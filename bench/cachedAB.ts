/**
 * The cached path, two copies of the library side by side in one process: `A=<dir> [B=<dir>] npx tsx
 * bench/cachedAB.ts` (directories of a `src`, e.g. `git archive <commit> src | tar -x -C tmp/base` and
 * `A=tmp/base/src`; B defaults to this `src`). Each copy gets a `ClientSecretCredential` over the in-memory
 * `TestHttpClient`; rounds alternate which copy goes first; each round times `N` cached `getToken` calls in one fiber
 * and `N` through `AzureSdk.toTokenCredential`, in CPU time per call. Put the same copy in both slots first: the
 * second slot measures a little slower whatever it holds.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { resolve } from "node:path"
import type * as Library from "../src/index.js"

const N = Number(process.env.N ?? 300_000)
const ROUNDS = Number(process.env.ROUNDS ?? 5)
const SCOPE = "https://vault.azure.net/.default"
const load = async (dir: string) => {
  const lib = await import(`${dir}/index.ts`) as typeof Library
  const http = lib.TestHttpClient.unsafeMake(() => lib.TestHttpClient.json(200, lib.TestHttpClient.tokenBody("tok")))
  const layer = lib.ClientSecretCredential.layer({
    tenantId: "11111111-2222-3333-4444-555555555555",
    clientId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    clientSecret: Redacted.make("s"),
    authorityHost: "https://login.example.test"
  }).pipe(Layer.provide(http.layer))
  const rt = ManagedRuntime.make(layer)
  const cred = await rt.runPromise(lib.TokenCredential.TokenCredential)
  await rt.runPromise(cred.getToken(SCOPE))
  const sdk = lib.AzureSdk.toTokenCredential(layer)
  await sdk.getToken(SCOPE)
  const fiber = () => {
    const cpu = process.cpuUsage()
    rt.runSync(Effect.gen(function*() {
      for (let i = 0; i < N; i++) yield* cred.getToken(SCOPE)
    }))
    const u = process.cpuUsage(cpu)
    return (u.user + u.system) / N * 1000
  }
  const azure = async () => {
    const cpu = process.cpuUsage()
    for (let i = 0; i < N; i++) await sdk.getToken(SCOPE)
    const u = process.cpuUsage(cpu)
    return (u.user + u.system) / N * 1000
  }
  return { fiber, azure }
}
const a = await load(resolve(process.env.A ?? "tmp/base/src"))
const b = await load(resolve(process.env.B ?? "src"))
const res: Record<string, Array<number>> = { "A fiber": [], "B fiber": [], "A sdk": [], "B sdk": [] }
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? [["A", a], ["B", b]] as const : [["B", b], ["A", a]] as const
  for (const [n, x] of order) res[`${n} fiber`]!.push(x.fiber())
  for (const [n, x] of order) res[`${n} sdk`]!.push(await x.azure())
}
const med = (xs: Array<number>) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!
for (const [k, v] of Object.entries(res)) {
  console.log(
    k,
    "ns/call CPU median",
    med(v).toFixed(0),
    "all",
    v.map((x) => x.toFixed(0)).join(" ")
  )
}

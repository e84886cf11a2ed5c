/**
 * The emulator's request throughput: client-credentials token requests, one after another on one keep-alive
 * connection. `npx tsx packages/emulator/scripts/throughput.ts [requests]` (default 1000, after 100 to warm up).
 * Prints the wall time and the CPU time of the process (client and emulator together), which stays meaningful on a
 * loaded machine.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as http from "node:http"
import * as IdentityEmulator from "../src/IdentityEmulator.js"

const count = Number(process.argv[2] ?? 1000)

const program = Effect.gen(function*() {
  const emulator = yield* IdentityEmulator.make()
  const target = new URL(emulator.endpoints.token)
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: emulator.clientId,
    client_secret: Redacted.value(emulator.clientSecret),
    scope: "https://vault.azure.net/.default"
  }).toString()
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const sockets = new Set<unknown>()
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const request = http.request(target, {
        method: "POST",
        agent,
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) }
      }, (response) => {
        sockets.add(request.socket)
        response.resume()
        response.on("end", () => resolve(response.statusCode ?? 0))
      })
      request.on("error", reject)
      request.end(body)
    })
  const run = (n: number) =>
    Effect.promise(async () => {
      for (let i = 0; i < n; i++) {
        const status = await once()
        if (status !== 200) throw new Error(`status ${status}`)
      }
    })
  yield* run(100)
  sockets.clear()
  const start = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  yield* run(count)
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const cpu = process.cpuUsage(cpuStart)
  const cpuMillis = (cpu.user + cpu.system) / 1000
  agent.destroy()
  yield* Effect.sync(() =>
    console.log(
      `${count} client-credentials requests on ${sockets.size} connection(s): ${seconds.toFixed(2)} s, ` +
        `${Math.round(count / seconds)} requests/s, ${(seconds * 1000 / count).toFixed(2)} ms each; CPU ` +
        `${(cpuMillis / count).toFixed(2)} ms per request`
    )
  )
})

Effect.runPromise(Effect.scoped(program))

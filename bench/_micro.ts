import * as Effect from "effect/Effect"
import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import * as Ref from "effect/Ref"
import * as Http from "../src/internal/http.js"
import * as Scrub from "../src/internal/scrub.js"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"

const N = 20000
const op = Effect.async<number>((resume) => { setImmediate(() => resume(Effect.succeed(1))) })
const variants: Record<string, Effect.Effect<unknown, unknown>> = {
  base: op,
  timeoutFail: Effect.timeoutFail(op, { duration: Duration.seconds(30), onTimeout: () => "t" }),
  scoped: Effect.scoped(op),
  retryExp: Effect.retry(op, Schedule.exponential(Duration.millis(100)).pipe(Schedule.jitteredWith({ min: 0.5, max: 1 }), Schedule.intersect(Schedule.recurs(3)))),
  withSpan: Effect.withSpan(op, "x", { captureStackTrace: false, attributes: { a: "1", b: "2", c: "3", d: "4" } }),
  locally: Scrub.withAllHeadersRedacted(op),
  uuid: Effect.zipRight(Http.randomUuid, op),
  safeUrl: Effect.zipRight(Effect.sync(() => Http.safeUrl("https://127.0.0.1:4443/tenant/oauth2/v2.0/token")), op),
  refs3: Effect.zipRight(Effect.all([Ref.make(0), Ref.make(0), Ref.make(0)]), op),
  request: Effect.zipRight(Effect.sync(() => HttpClientRequest.post("https://127.0.0.1:4443/tenant/oauth2/v2.0/token").pipe(HttpClientRequest.setHeader("client-request-id", "abc"), HttpClientRequest.bodyUrlParams({ client_id: "c", client_secret: "s", grant_type: "client_credentials", scope: "https://x.example.com/.default" }))), op),
  either: Effect.either(op),
}
for (let round = 0; round < 3; round++) {
  const out: Array<string> = []
  for (const [name, eff] of Object.entries(variants)) {
    await Effect.runPromise(Effect.forEach(Array.from({ length: 2000 }), () => eff, { discard: true }))
    const cpu = process.cpuUsage()
    await Effect.runPromise(Effect.forEach(Array.from({ length: N }), () => eff, { discard: true }))
    const u = process.cpuUsage(cpu)
    out.push(`${name} ${((u.user + u.system) / N).toFixed(1)}µs`)
  }
  console.log(out.join(" | "))
}

import * as Effect from "effect/Effect"
import * as Duration from "effect/Duration"
import * as Fiber from "effect/Fiber"

const N = 20000
const op = Effect.async<number>((resume) => { setImmediate(() => resume(Effect.succeed(1))) })
const variants: Record<string, Effect.Effect<unknown, unknown>> = {
  base: op,
  timeoutFail: Effect.timeoutFail(op, { duration: Duration.seconds(30), onTimeout: () => "t" }),
  fork1join: Effect.flatMap(Effect.fork(op), Fiber.join),
  fork1await: Effect.flatMap(Effect.fork(op), Fiber.await),
  forkDaemonAwait: Effect.flatMap(Effect.forkDaemon(op), Fiber.await),
  sleepForkInterrupt: Effect.flatMap(Effect.forkDaemon(Effect.sleep(30000)), (f) => Effect.zipLeft(op, Fiber.interruptFork(f))),
  sleepForkInterruptAwait: Effect.flatMap(Effect.forkDaemon(Effect.sleep(30000)), (f) => Effect.zipLeft(op, Fiber.interrupt(f))),
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

/**
 * `npm run bench:redis`: the Redis token cache across a fleet of processes, against the Redis at `REDIS_URL`
 * (default redis://127.0.0.1:6379) and a loopback token server.
 *
 * 1. 8 processes ask for the same 1000 scopes (cold, 50 at a time each): how many token requests reach the server (the goal: one
 *    per scope, not one per process and scope), and how long the whole fleet takes.
 * 2. Tokens served from Redis: a process with an empty memory cache gets each of the 1000 scopes in turn (p50/p99 of
 *    `getToken`), first alone, then 8 processes at once.
 *
 * It also prints the cache's counters summed over the processes (`RedisTokenCache.redisCalls`: calls `ok`, answered
 * `late`, `timeout`, `error`; `unsharedRequests`), which say where any extra token request came from.
 *
 * `COMMAND_TIMEOUT_MS` sets the bound of each Redis call (default 100 ms, as in production).
 *
 * Keys live under a prefix of this run and are removed at the end.
 *
 * usage: npm run bench:redis [-- <processes> <scopes> <concurrent scopes per process>]
 */
import * as Effect from "effect/Effect"
import { Redis } from "ioredis"
import { type ChildProcess, fork } from "node:child_process"
import * as crypto from "node:crypto"
import { performance } from "node:perf_hooks"
import { tokenServer } from "../test/support/tokenServer.js"

// the children load the tests' network guard too: nothing but loopback
const guardedNodeArgs = [
  "--import",
  "tsx",
  "--import",
  new URL("../test/support/networkGuard.ts", import.meta.url).pathname
]
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const processes = Number(process.argv[2] ?? "8")
const scopeCount = Number(process.argv[3] ?? "1000")
const concurrency = Number(process.argv[4] ?? "50")
const prefix = `effect-azure-identity-bench:${crypto.randomUUID()}:`
const scopes = Array.from({ length: scopeCount }, (_, i) => `https://bench-${i}.example/.default`)

interface Child {
  readonly child: ChildProcess
  readonly next: (op: string) => Promise<any>
}

const spawn = (env: Record<string, string>): Child => {
  const child = fork(new URL("../test/support/redisChild.ts", import.meta.url).pathname, [], {
    execArgv: [...guardedNodeArgs],
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const inbox: Array<{ op: string; message?: string }> = []
  const waiters = new Set<() => void>()
  child.on("message", (m: { op: string }) => {
    inbox.push(m)
    for (const w of [...waiters]) w()
  })
  const next = (op: string) =>
    new Promise<any>((resolve, reject) => {
      const check = () => {
        const i = inbox.findIndex((m) => m.op === op || m.op === "error")
        if (i < 0) return
        const [m] = inbox.splice(i, 1)
        waiters.delete(check)
        if (m!.op === "error") reject(new Error(m!.message))
        else resolve(m)
      }
      waiters.add(check)
      child.once("exit", (code) => reject(new Error(`child exited (${code})`)))
      check()
    })
  return { child, next }
}

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}
const ms = (n: number) => `${n.toFixed(2)} ms`

/** The cache's counters summed over the processes, e.g. `calls call=lock,outcome=late 12`. */
const printCounters = (children: ReadonlyArray<Child>, title: string) =>
  Effect.promise(async () => {
    const all = await Promise.all(children.map((c) => {
      c.child.send({ op: "metrics" })
      return c.next("metrics")
    }))
    const sum = new Map<string, number>()
    for (const { counters } of all) {
      for (const [name, count] of Object.entries(counters as Record<string, number>)) {
        sum.set(name, (sum.get(name) ?? 0) + count)
      }
    }
    console.log(title)
    for (const [name, count] of [...sum].sort(([a], [b]) => a.localeCompare(b))) console.log(`    ${name}: ${count}`)
  })

const program = Effect.gen(function*() {
  const server = yield* tokenServer()
  const env = {
    REDIS_URL,
    REDIS_PREFIX: prefix,
    TOKEN_CACHE_KEY: crypto.randomBytes(32).toString("base64"),
    AUTHORITY_HOST: server.url,
    LOCK_TTL_MS: "10000",
    COMMAND_TIMEOUT_MS: process.env.COMMAND_TIMEOUT_MS ?? "100"
  }
  const children = Array.from({ length: processes }, () => spawn(env))
  yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((c) => c.child.kill("SIGKILL"))))
  yield* Effect.promise(() => Promise.all(children.map((c) => c.next("ready"))))

  console.log(`${processes} processes × ${scopeCount} scopes, cold, ${concurrency} at a time in each process`)
  const coldStart = performance.now()
  for (const c of children) c.child.send({ op: "get", scopes, callers: 1, concurrency })
  const results = yield* Effect.promise(() => Promise.all(children.map((c) => c.next("tokens"))))
  const coldMillis = performance.now() - coldStart
  const agree = results.every((r) => r.tokens.every((t: string, i: number) => t === results[0].tokens[i]))
  console.log(`  token requests: ${server.count()} (scopes: ${scopeCount}, without sharing: ${processes * scopeCount})`)
  const perScope = new Map<string, number>()
  for (const scope of server.scopes) perScope.set(scope, (perScope.get(scope) ?? 0) + 1)
  const repeated = [...perScope.values()].filter((n) => n > 1).length
  console.log(`  scopes requested more than once: ${repeated} (a failed Redis call, or an HTTP retry)`)
  console.log(`  every process got the same token for each scope: ${agree}`)
  console.log(`  wall time: ${ms(coldMillis)}`)
  yield* printCounters(children, "  Redis calls of the cold run, all processes (RedisTokenCache.redisCalls):")

  const before = server.count()
  const alone = yield* Effect.promise(() => {
    children[0]!.child.send({ op: "latency", scopes })
    return children[0]!.next("latency")
  })
  console.log(`getToken served from Redis (new process memory, ${scopeCount} scopes in turn), 1 process`)
  console.log(`  p50 ${ms(percentile(alone.millis, 0.5))}, p99 ${ms(percentile(alone.millis, 0.99))}`)
  const all = yield* Effect.promise(() => {
    for (const c of children) c.child.send({ op: "latency", scopes })
    return Promise.all(children.map((c) => c.next("latency")))
  })
  const millis = all.flatMap((r) => r.millis as Array<number>)
  console.log(`getToken served from Redis, ${processes} processes at once`)
  console.log(`  p50 ${ms(percentile(millis, 0.5))}, p99 ${ms(percentile(millis, 0.99))}`)
  console.log(`  token requests during the reads: ${server.count() - before}`)
  yield* printCounters(children, "  Redis calls so far, all processes:")
}).pipe(
  Effect.scoped,
  Effect.ensuring(Effect.promise(async () => {
    const admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
    const keys = await admin.keys(`${prefix}*`)
    if (keys.length > 0) await admin.del(...keys)
    admin.disconnect()
  }))
)

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)

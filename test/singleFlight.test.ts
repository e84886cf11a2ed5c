/**
 * The single-flight primitive and its three users (the token cache engine, the IMDS probe, the initial grant of the
 * user credentials): an interruption at any step never leaves later callers waiting forever.
 *
 * Each "window" test runs the first caller under a scheduler that stops it at its k-th operation, interrupts it
 * there, and does so for every k until the first caller reached the shared request: every step of registration and
 * fork is hit once, deterministically.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scheduler from "effect/Scheduler"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { AccessToken } from "../src/index.js"
import type { TokenResponse } from "../src/internal/aad.js"
import * as Imds from "../src/internal/managedIdentity/imds.js"
import * as SingleFlight from "../src/internal/singleFlight.js"
import * as TokenCacheEngine from "../src/internal/tokenCache.js"
import * as UserTokens from "../src/internal/userTokens.js"
import { settle, tokenValue, withEnv } from "./support/helpers.js"
import { json, mockHttp } from "./support/mockHttp.js"

const HOUR = 3_600_000

/**
 * A scheduler that makes the fiber running under it yield once, at its k-th operation, and holds that fiber there
 * until `release`: the test can interrupt it at exactly that point.
 */
class YieldAt implements Scheduler.Scheduler {
  private ops = 0
  private pending = false
  held: Scheduler.Task | undefined
  constructor(private readonly at: number) {}
  shouldYield(): number | false {
    if (this.ops++ !== this.at) return false
    this.pending = true
    return 0
  }
  scheduleTask(task: Scheduler.Task, priority: number): void {
    if (this.pending) {
      this.pending = false
      this.held = task
      return
    }
    Scheduler.defaultScheduler.scheduleTask(task, priority)
  }
  release(): void {
    const task = this.held
    this.held = undefined
    if (task !== undefined) Scheduler.defaultScheduler.scheduleTask(task, 0)
  }
}

/**
 * For k = 0, 1, …: starts `call` in a first caller, stops it at its k-th operation and interrupts it there, then
 * starts a second caller, releases the shared request and checks that the second caller ends. Stops at the first k
 * where the first caller reached the shared request before stopping (every step before it was tried).
 */
const everyWindow = <A, E>(
  setUp: (release: Effect.Effect<void>) => Effect.Effect<Effect.Effect<A, E>, never, Scope.Scope>,
  check: (exit: Exit.Exit<A, E>, k: number) => void
) =>
  Effect.gen(function*() {
    for (let k = 0; k < 500; k++) {
      const covered = yield* Effect.scoped(Effect.gen(function*() {
        const latch = yield* Deferred.make<void>()
        let reached = false
        const call = yield* setUp(Effect.zipRight(Effect.sync(() => (reached = true)), Deferred.await(latch)))
        const scheduler = new YieldAt(k)
        const first = yield* Effect.fork(Effect.withScheduler(call, scheduler))
        for (let i = 0; i < 100 && scheduler.held === undefined && !reached; i++) yield* Effect.yieldNow()
        const covered = reached || scheduler.held === undefined
        // delivered now, while the first caller is held at its k-th step
        first.unsafeInterruptAsFork(yield* Effect.fiberId)
        scheduler.release()
        yield* Fiber.await(first)
        const second = yield* Effect.fork(call)
        yield* Deferred.succeed(latch, undefined)
        yield* settle
        const exit = second.unsafePoll()
        assert.isNotNull(exit, `interrupted at step ${k}: the next caller waits forever`)
        if (exit !== null) check(exit, k)
        return covered
      }))
      if (covered) return k
    }
    return 500
  })

const tokenAt = (now: number, name = "t") =>
  AccessToken.make({ token: name, obtainedAtMillis: now, expiresOnMillis: now + HOUR })

describe("SingleFlight", () => {
  it.effect("concurrent callers share one run; an interrupted caller stops waiting, the others get the result", () =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const latch = yield* Deferred.make<void>()
      let runs = 0
      const flight = SingleFlight.make<string, never>({ scope })
      const request = Effect.zipRight(Effect.sync(() => runs++), Effect.as(Deferred.await(latch), "done"))
      const a = yield* Effect.fork(flight.run(request))
      const b = yield* Effect.fork(flight.run(request))
      yield* settle
      yield* Fiber.interrupt(a)
      assert.isTrue(flight.running())
      yield* Deferred.succeed(latch, undefined)
      assert.strictEqual(yield* Fiber.join(b), "done")
      assert.strictEqual(runs, 1)
      assert.isFalse(flight.running())
    }).pipe(Effect.scoped))

  it.effect("closing the scope interrupts the request and releases every waiter", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const flight = SingleFlight.make<string, never>({ scope })
      const waiter = yield* Effect.fork(flight.run(Effect.never))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(waiter)
      assert.isTrue(Exit.isInterrupted(exit))
      // a call after the scope closed ends at once instead of waiting forever
      const late = yield* Effect.fork(flight.run(Effect.succeed("x")))
      yield* settle
      assert.isNotNull(late.unsafePoll())
    }))

  it.effect("typed failures reach every waiter; a held failure answers without a new run until its time is up", () =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      let runs = 0
      const slot = SingleFlight.makeSlot<string, "nope">()
      const options: SingleFlight.Options<string, "nope"> = { scope, holdMillis: () => 1000 }
      const failing = Effect.zipRight(Effect.sync(() => runs++), Effect.fail("nope" as const))
      const exits = yield* Effect.all(
        Array.from({ length: 5 }, () => Effect.exit(SingleFlight.join(slot, failing, options))),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(exits.map((e) => Exit.isFailure(e)), [true, true, true, true, true])
      assert.strictEqual(runs, 1)
      yield* TestClock.adjust(999)
      assert.deepStrictEqual(yield* Effect.flip(SingleFlight.join(slot, failing, options)), "nope")
      assert.strictEqual(runs, 1)
      yield* TestClock.adjust(1)
      yield* Effect.flip(SingleFlight.join(slot, failing, options))
      assert.strictEqual(runs, 2)
    }).pipe(Effect.scoped))

  it.effect("cancelWhenAbandoned: the request stops once its last waiter is interrupted", () =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      let stopped = 0
      const flight = SingleFlight.make<string, never>({ scope, cancelWhenAbandoned: true })
      const request = Effect.onInterrupt(Effect.never, () => Effect.sync(() => stopped++))
      const a = yield* Effect.fork(flight.run(request))
      const b = yield* Effect.fork(flight.run(request))
      yield* settle
      yield* Fiber.interrupt(a)
      yield* settle
      assert.strictEqual(stopped, 0)
      yield* Fiber.interrupt(b)
      yield* settle
      assert.strictEqual(stopped, 1)
      assert.isFalse(flight.running())
    }).pipe(Effect.scoped))

  it.effect("an interruption at any step of registration never strands later callers", () =>
    Effect.gen(function*() {
      const steps = yield* everyWindow(
        (release) =>
          Effect.map(Effect.scope, (scope) => {
            const flight = SingleFlight.make<string, never>({ scope })
            return flight.run(Effect.as(release, "ok"))
          }),
        (exit) => assert.deepStrictEqual(exit, Exit.succeed("ok"))
      )
      assert.isAbove(steps, 2)
    }))
})

describe("token cache engine: interruption windows", () => {
  it.effect("a cold caller interrupted at any step never strands the key", () =>
    Effect.gen(function*() {
      const steps = yield* everyWindow(
        (release) =>
          Effect.map(
            TokenCacheEngine.make({ partition: "p", name: "Test" }),
            (engine) => engine.get("k", Effect.as(release, tokenAt(0)), false)
          ),
        (exit) => assert.isTrue(Exit.isSuccess(exit))
      )
      assert.isAbove(steps, 2)
    }))
})

describe("IMDS probe: interruption windows", () => {
  it.effect("a caller interrupted at any step of the probe never strands later callers", () =>
    Effect.gen(function*() {
      const steps = yield* everyWindow(
        (release) =>
          Effect.gen(function*() {
            const http = mockHttp((request) =>
              request.headers["metadata"] === undefined
                ? Effect.as(release, json(400, { error: "bad_request" }))
                : json(200, { access_token: "imds-token", expires_in: 3600, token_type: "Bearer" })
            )
            const source = yield* Imds.make({
              credential: "ManagedIdentityCredential",
              client: http.client,
              identity: { _tag: "SystemAssigned" },
              retryPolicy: Imds.retryPolicy
            }, {
              host: "http://127.0.0.1:9",
              hostSource: "test",
              probe: true,
              probeTimeoutMillis: 60 * HOUR,
              probeUnavailableMillis: 1000
            })
            return source.getToken("https://vault.azure.net")
          }),
        (exit) => {
          assert.isTrue(Exit.isSuccess(exit))
          if (Exit.isSuccess(exit)) assert.strictEqual(tokenValue(exit.value), "imds-token")
        }
      )
      assert.isAbove(steps, 2)
    }))
})

describe("user credentials' initial grant: interruption windows", () => {
  const response = (token: AccessToken.AccessToken): TokenResponse => ({
    accessToken: token,
    refreshToken: Option.none(),
    idToken: Option.none(),
    clientInfo: Option.none(),
    scope: Option.none(),
    foci: false
  })

  it.effect("a caller interrupted at any step of the initial grant never strands later callers", () =>
    Effect.gen(function*() {
      const steps = yield* everyWindow(
        (release) =>
          Effect.gen(function*() {
            const http = mockHttp(() => json(500, {}))
            const credential = yield* UserTokens.make(
              "TestUserCredential",
              { tenantId: "tenant", clientId: "client" },
              () =>
                Effect.succeed({
                  reusable: true,
                  cancelWhenAbandoned: true,
                  exhausted: "nothing is left",
                  run: () => Effect.as(release, response(tokenAt(0, "user-token")))
                })
            ).pipe(Effect.provide(http.layer), withEnv())
            return credential.getToken("https://graph.microsoft.com/.default")
          }),
        (exit) => {
          assert.isTrue(Exit.isSuccess(exit), String(exit))
        }
      )
      assert.isAbove(steps, 2)
    }))
})

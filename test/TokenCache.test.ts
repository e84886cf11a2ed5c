import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { AccessToken, TokenCache } from "../src/index.js"
import * as TokenCacheEngine from "../src/internal/tokenCache.js"
import { settle } from "./support/helpers.js"

const MIN = 60_000
const HOUR = 60 * MIN

const token = (expiresOn: number, refreshOn?: number): AccessToken.AccessToken => ({
  token: Redacted.make("t"),
  expiresOn: DateTime.unsafeMake(expiresOn),
  refreshOn: refreshOn === undefined ? Option.none() : Option.some(DateTime.unsafeMake(refreshOn)),
  tokenType: "Bearer"
})

describe("refresh policy (pure)", () => {
  it("fresh before refreshOn, refresh until expiry - 30 s, expired after", () => {
    const t = token(10 * HOUR, 5 * HOUR)
    assert.strictEqual(TokenCache.decide(0, t), "fresh")
    assert.strictEqual(TokenCache.decide(5 * HOUR - 1, t), "fresh")
    assert.strictEqual(TokenCache.decide(5 * HOUR, t), "refresh")
    assert.strictEqual(TokenCache.decide(10 * HOUR - 30_001, t), "refresh")
    assert.strictEqual(TokenCache.decide(10 * HOUR - 30_000, t), "expired")
    assert.strictEqual(TokenCache.decide(11 * HOUR, t), "expired")
  })

  it("without refreshOn refreshes 5 minutes before expiry", () => {
    const t = token(HOUR)
    assert.strictEqual(TokenCache.decide(HOUR - 5 * MIN - 1, t), "fresh")
    assert.strictEqual(TokenCache.decide(HOUR - 5 * MIN, t), "refresh")
  })

  it("computeRefreshOnMillis: refresh_in, half life for >= 2 h, else 5 minutes before expiry", () => {
    assert.strictEqual(AccessToken.computeRefreshOnMillis(0, 24 * HOUR, 30 * MIN), 30 * MIN)
    assert.strictEqual(AccessToken.computeRefreshOnMillis(0, 24 * HOUR), 12 * HOUR)
    assert.strictEqual(AccessToken.computeRefreshOnMillis(0, 2 * HOUR), HOUR)
    assert.strictEqual(AccessToken.computeRefreshOnMillis(0, HOUR), 55 * MIN)
    // short tokens: never earlier than half their life
    assert.strictEqual(AccessToken.computeRefreshOnMillis(0, 4 * MIN), 2 * MIN)
    // refresh_in beyond expiry is clamped
    assert.strictEqual(AccessToken.computeRefreshOnMillis(0, HOUR, 2 * HOUR), HOUR)
  })

  it("AccessToken.make defaults the token type and keeps the token redacted", () => {
    const t = AccessToken.make({ token: "abc", obtainedAtMillis: 0, expiresOnMillis: HOUR })
    assert.strictEqual(t.tokenType, "Bearer")
    assert.strictEqual(String(t.token), "<redacted>")
    assert.notInclude(JSON.stringify(t), "abc")
  })

  it("short-lived tokens: served until half of what they had left, long ones until 30 s before expiry", () => {
    assert.strictEqual(TokenCacheEngine.mustRefreshAtMillis(0, HOUR), HOUR - 30_000)
    assert.strictEqual(TokenCacheEngine.mustRefreshAtMillis(0, 60_000), 30_000)
    assert.strictEqual(TokenCacheEngine.mustRefreshAtMillis(0, 59_999), 29_999)
    assert.strictEqual(TokenCacheEngine.mustRefreshAtMillis(1000, 21_000), 11_000)
    assert.strictEqual(TokenCacheEngine.mustRefreshAtMillis(0, 1), 0)
  })

  it.effect.prop(
    "the decision only moves forward as time passes",
    [FastCheck.integer({ min: 1, max: 48 * HOUR }), FastCheck.integer({ min: 0, max: 48 * HOUR })],
    ([lifetime, offset]) =>
      Effect.sync(() => {
        const t = AccessToken.make({ token: "x", obtainedAtMillis: 0, expiresOnMillis: lifetime })
        const order = { fresh: 0, refresh: 1, expired: 2 } as const
        const a = TokenCache.decide(offset, t)
        const b = TokenCache.decide(offset + 1000, t)
        assert.isTrue(order[a] <= order[b])
        // a token is never served when it has less than 30 s left
        if (offset >= lifetime - 30_000) assert.strictEqual(a, "expired")
      })
  )
})

describe("cache engine memory bound", () => {
  it.effect("drops expired entries when a new key arrives and the map is full; live tokens stay", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(0)
      const engine = yield* TokenCacheEngine.make({ partition: "p", name: "Test", sweepAbove: 3 })
      const fetchFor = (lifetime: number) =>
        Effect.flatMap(
          Clock.currentTimeMillis,
          (now) =>
            Effect.succeed(AccessToken.make({ token: "t", obtainedAtMillis: now, expiresOnMillis: now + lifetime }))
        )
      yield* engine.get("short-1", fetchFor(MIN), false)
      yield* engine.get("short-2", fetchFor(MIN), false)
      yield* engine.get("long", fetchFor(HOUR), false)
      assert.strictEqual(engine.size(), 3)
      yield* TestClock.adjust(2 * MIN)
      yield* engine.get("new", fetchFor(HOUR), false)
      assert.strictEqual(engine.size(), 2) // the two expired entries went, "long" and "new" remain
      let fetched = 0
      yield* engine.get("long", Effect.zipRight(Effect.sync(() => fetched++), fetchFor(HOUR)), false)
      assert.strictEqual(fetched, 0)
    }).pipe(Effect.scoped))

  const fetchAt = (lifetime: number) =>
    Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => Effect.succeed(AccessToken.make({ token: "t", obtainedAtMillis: now, expiresOnMillis: now + lifetime }))
    )

  it.effect("bounded: keys whose tokens expired go first, a few per new key, whatever the number of live keys", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(0)
      const engine = yield* TokenCacheEngine.make({ partition: "p", name: "Test", sweepAbove: 30, maxEntries: 1000 })
      // 100 live keys (1 h), then a stream of short-lived keys (1 min), 20 every 30 s
      for (let i = 0; i < 100; i++) yield* engine.get(`live-${i}`, fetchAt(HOUR), false)
      let fetched = 0
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 20; i++) {
          const counted = Effect.zipRight(Effect.sync(() => fetched++), fetchAt(MIN))
          yield* engine.get(`user-${round}-${i}`, counted, false)
        }
        yield* TestClock.adjust(30_000)
      }
      // about 1 min of short-lived keys (40) are alive, plus those not yet swept: far below 500
      assert.isBelow(engine.size(), 100 + 100)
      // every live key is still served from memory
      let refetched = 0
      const clock = yield* Clock.currentTimeMillis
      assert.isBelow(clock, HOUR - 5 * MIN)
      for (let i = 0; i < 100; i++) {
        yield* engine.get(`live-${i}`, Effect.zipRight(Effect.sync(() => refetched++), fetchAt(HOUR)), false)
      }
      assert.strictEqual(refetched, 0)
      assert.strictEqual(fetched, 400)
    }).pipe(Effect.scoped))

  it.effect("the hard bound drops the oldest live keys, after the expired ones", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(0)
      const engine = yield* TokenCacheEngine.make({ partition: "p", name: "Test", sweepAbove: 5, maxEntries: 5 })
      yield* engine.get("expiring", fetchAt(MIN), false)
      for (let i = 0; i < 4; i++) yield* engine.get(`live-${i}`, fetchAt(HOUR), false)
      yield* TestClock.adjust(2 * MIN)
      yield* engine.get("new-0", fetchAt(HOUR), false)
      assert.strictEqual(engine.size(), 5)
      let fetched = 0
      const counted = Effect.zipRight(Effect.sync(() => fetched++), fetchAt(HOUR))
      // the expired key went, the four live ones stayed
      for (let i = 0; i < 4; i++) yield* engine.get(`live-${i}`, counted, false)
      assert.strictEqual(fetched, 0)
      for (let i = 1; i <= 20; i++) yield* engine.get(`new-${i}`, fetchAt(HOUR), false)
      assert.strictEqual(engine.size(), 5)
      // the newest keys are the ones kept
      for (let i = 16; i <= 20; i++) yield* engine.get(`new-${i}`, counted, false)
      assert.strictEqual(fetched, 0)
    }).pipe(Effect.scoped))

  it.effect("a cached path is its key's entry: an effect that joins the map when it first runs, and again after a sweep", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(0)
      let requested: Array<string> = []
      const engine = yield* TokenCacheEngine.make({
        partition: "p",
        name: "Test",
        sweepAbove: 2,
        request: (key) =>
          Effect.zipRight(Effect.sync(() => void requested.push(key)), fetchAt(key === "short" ? MIN : HOUR))
      })
      const short = engine.cached("short")
      assert.isTrue(Effect.isEffect(short))
      assert.strictEqual(engine.size(), 0) // made, not run: not in the map, nothing requested
      assert.isUndefined(engine.peekCached(short, 0))
      const first = yield* short
      assert.deepStrictEqual(requested, ["short"])
      assert.strictEqual(engine.size(), 1)
      // the same entry for the key from now on, run through `pipe` and `yield*` like any effect
      assert.strictEqual(engine.cached("short"), short)
      assert.strictEqual(yield* short.pipe(Effect.map((t) => t)), first)
      assert.strictEqual(engine.peekCached(short, 0), first)
      assert.strictEqual(engine.peekFresh("short", 0), first)
      yield* engine.cached("long-1")
      // "short" expires; a new key sweeps it out of the map: the kept entry lets its token go
      yield* TestClock.adjust(2 * MIN)
      yield* engine.cached("long-2")
      assert.strictEqual(engine.size(), 2)
      assert.isUndefined(engine.peekCached(short, 2 * MIN))
      // run again, it joins the map again with a new token
      requested = []
      const second = yield* short
      assert.deepStrictEqual(requested, ["short"])
      assert.notStrictEqual(second, first)
      assert.strictEqual(engine.size(), 3)
      assert.strictEqual(engine.cached("short"), short)
    }).pipe(Effect.scoped))

  it.effect("a kept entry whose key was taken by another entry hands over to it", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(0)
      let requests = 0
      const engine = yield* TokenCacheEngine.make({
        partition: "p",
        name: "Test",
        sweepAbove: 1,
        maxEntries: 1,
        request: () => Effect.zipRight(Effect.sync(() => requests++), fetchAt(HOUR))
      })
      const kept = engine.cached("k")
      yield* kept
      yield* engine.get("other", fetchAt(HOUR), false) // the hard bound drops "k"
      assert.isUndefined(engine.peekCached(kept, 0))
      const claims = yield* engine.get("k", fetchAt(HOUR), true) // "k" again, a new entry, through `get`
      assert.strictEqual(yield* kept, claims) // served from the new entry, no request
      assert.strictEqual(requests, 1)
    }).pipe(Effect.scoped))

  it.effect("persistent: false keeps a TokenCache service in the context out of it", () =>
    Effect.gen(function*() {
      const saved: Array<string> = []
      const backend = Layer.succeed(TokenCache.TokenCache, {
        load: () => Effect.succeed(Option.none()),
        save: (key) => Effect.sync(() => void saved.push(key))
      })
      const token = Effect.succeed(AccessToken.make({ token: "t", obtainedAtMillis: 0, expiresOnMillis: HOUR }))
      yield* Effect.gen(function*() {
        const memoryOnly = yield* TokenCacheEngine.make({ partition: "dev", name: "Dev", persistent: false })
        yield* memoryOnly.get("k", token, false)
        assert.deepStrictEqual(saved, [])
        const persisted = yield* TokenCacheEngine.make({ partition: "app", name: "App" })
        yield* persisted.get("k", token, false)
        assert.strictEqual(saved.length, 1)
      }).pipe(Effect.provide(backend))
    }).pipe(Effect.scoped))
})

describe("cache engine: review fixes", () => {
  const fresh = Effect.succeed(AccessToken.make({ token: "t", obtainedAtMillis: 0, expiresOnMillis: HOUR }))

  it.effect("a call after the scope closed ends instead of waiting forever", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(0)
      const scope = yield* Scope.make()
      const engine = yield* TokenCacheEngine.make({ partition: "p", name: "Test" }).pipe(Scope.extend(scope))
      yield* Scope.close(scope, Exit.void)
      const caller = yield* Effect.fork(engine.get("k", fresh, false))
      yield* settle
      assert.isNotNull(caller.unsafePoll(), "the caller waits forever")
    }))
})

import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { lazyModule } from "../src/internal/lazy.js"

describe("lazyModule", () => {
  it.effect("loads once: concurrent and later callers get the same module", () =>
    Effect.gen(function*() {
      let loads = 0
      const module = { name: "the module" }
      const load = lazyModule(() => {
        loads++
        return Promise.resolve(module)
      })
      assert.strictEqual(loads, 0, "nothing is loaded before the effect runs")
      const [a, b] = yield* Effect.all([load, load], { concurrency: "unbounded" })
      const c = yield* load
      assert.strictEqual(a, module)
      assert.strictEqual(b, module)
      assert.strictEqual(c, module)
      assert.strictEqual(loads, 1)
    }))

  it("is synchronous once loaded", async () => {
    const load = lazyModule(() => Promise.resolve(42))
    assert.strictEqual(await Effect.runPromise(load), 42)
    assert.strictEqual(Effect.runSync(load), 42)
  })

  it.effect("a failed load is a defect, and the next caller tries again", () =>
    Effect.gen(function*() {
      let loads = 0
      const load = lazyModule(() => {
        loads++
        return loads === 1 ? Promise.reject(new Error("chunk missing")) : Promise.resolve("loaded")
      })
      const first = yield* Effect.exit(load)
      assert.isTrue(Exit.isFailure(first) && first.cause._tag === "Die")
      assert.strictEqual(yield* load, "loaded")
      assert.strictEqual(loads, 2)
    }))
})

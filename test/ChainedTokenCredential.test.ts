import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import {
  AccessToken,
  ChainedTokenCredential,
  ClientSecretCredential,
  IdentityError,
  TokenCredential
} from "../src/index.js"
import { captureLogs, setNow, T0, withEnv } from "./support/helpers.js"
import { json, mockHttp, tokenBody } from "./support/mockHttp.js"
import { recordingTracer } from "./support/tracing.js"

const SCOPE = "https://vault.azure.net/.default"
const SECRET = "wrong-secret-value-xyz"

type Behaviour = "token" | "unavailable" | "failed" | "required"

/** A link whose behaviour can be changed between calls; records its calls. */
const stub = (name: string, initial: Behaviour) => {
  const state = { behaviour: initial, calls: 0, builds: 0 }
  const service = TokenCredential.make(
    name,
    (scopes) =>
      Effect.suspend((): Effect.Effect<AccessToken.AccessToken, IdentityError.IdentityError> => {
        state.calls++
        switch (state.behaviour) {
          case "token":
            return Effect.succeed(
              AccessToken.make({ token: `${name}-token`, obtainedAtMillis: T0, expiresOnMillis: T0 + 3600_000 })
            )
          case "unavailable":
            return Effect.fail(
              new IdentityError.CredentialUnavailableError({ credential: name, reason: `${name} is not configured` })
            )
          case "required":
            return Effect.fail(
              new IdentityError.AuthenticationRequiredError({
                credential: name,
                reason: `${name} needs a sign-in`,
                scopes: typeof scopes === "string" ? [scopes] : scopes
              })
            )
          case "failed":
            return Effect.fail(
              new IdentityError.ClientAuthenticationError({
                credential: name,
                reason: `${name} was refused`,
                status: 401
              })
            )
        }
      })
  )
  const layer = Layer.effect(
    TokenCredential.TokenCredential,
    Effect.sync(() => {
      state.builds++
      return service
    })
  )
  return { state, service, layer }
}

const tokenValue = (t: AccessToken.AccessToken) => Redacted.value(t.token)

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const chainFailure = (exit: Exit.Exit<unknown, IdentityError.IdentityError>) => {
  const error = failureOf(exit)
  if (error._tag !== "ChainedAuthenticationError") throw new Error(`expected a chained error, got ${error._tag}`)
  return error
}

describe("ChainedTokenCredential", () => {
  it.effect("tries links in order: unavailable moves on, the first token wins", () =>
    Effect.gen(function*() {
      const a = stub("A", "unavailable")
      const b = stub("B", "required")
      const c = stub("C", "token")
      const d = stub("D", "token")
      const chain = ChainedTokenCredential.make(a.service, b.service, c.service, d.service)
      assert.strictEqual(chain.name, "ChainedTokenCredential")
      const token = yield* chain.getToken(SCOPE)
      assert.strictEqual(tokenValue(token), "C-token")
      assert.deepStrictEqual([a.state.calls, b.state.calls, c.state.calls, d.state.calls], [1, 1, 1, 0])
      // no memory by default: the next call walks from the top again
      yield* chain.getToken(SCOPE)
      assert.deepStrictEqual([a.state.calls, b.state.calls, c.state.calls, d.state.calls], [2, 2, 2, 0])
    }))

  it.effect("an authentication failure stops the chain: later links are never asked", () =>
    Effect.gen(function*() {
      const a = stub("A", "unavailable")
      const b = stub("B", "failed")
      const c = stub("C", "token")
      const exit = yield* Effect.exit(ChainedTokenCredential.make(a.service, b.service, c.service).getToken(SCOPE))
      const error = chainFailure(exit)
      assert.strictEqual(c.state.calls, 0)
      assert.deepStrictEqual(error.errors.map((e) => [e.credential, e._tag]), [
        ["A", "CredentialUnavailableError"],
        ["B", "ClientAuthenticationError"]
      ])
      assert.include(error.message, "ChainedTokenCredential stopped at B")
      assert.include(error.message, "1. A [unavailable]: A is not configured")
      assert.include(error.message, "2. B [failed]: B was refused")
    }))

  it.effect("a wrong client secret in link 1 does not fall through to link 2", () =>
    Effect.gen(function*() {
      yield* setNow
      const http = mockHttp(() =>
        json(401, {
          error: "invalid_client",
          error_description: "AADSTS7000215: Invalid client secret provided.",
          error_codes: [7000215]
        })
      )
      const fallback = stub("AzureCliCredential", "token")
      const chain = ChainedTokenCredential.layer(
        ClientSecretCredential.layer({
          tenantId: "contoso.onmicrosoft.com",
          clientId: "app-1",
          clientSecret: Redacted.make(SECRET),
          authorityHost: "https://login.example.test"
        }).pipe(Layer.provide(http.layer)),
        fallback.layer
      )
      const exit = yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(Effect.provide(chain))
      const error = chainFailure(exit)
      assert.strictEqual(fallback.state.calls, 0)
      assert.strictEqual(http.requests.length, 1)
      assert.strictEqual(error.errors.length, 1)
      assert.strictEqual(error.errors[0]!._tag, "ClientAuthenticationError")
      assert.include(error.message, "stopped at ClientSecretCredential")
      assert.include(error.message, "AADSTS7000215")
      for (const form of [error.message, String(error), JSON.stringify(error)]) assert.notInclude(form, SECRET)
    }).pipe(withEnv({})))

  it.effect("nothing worked: the aggregate lists every link, in order, with its kind and reason", () =>
    Effect.gen(function*() {
      const links = [stub("A", "unavailable"), stub("B", "required"), stub("C", "unavailable")] as const
      const exit = yield* Effect.exit(
        ChainedTokenCredential.makeWith([links[0].service, links[1].service, links[2].service], { name: "MyChain" })
          .getToken(SCOPE)
      )
      const error = chainFailure(exit)
      assert.strictEqual(error.credential, "MyChain")
      assert.deepStrictEqual(error.errors.map((e) => e.credential), ["A", "B", "C"])
      const lines = error.message.split("\n")
      assert.strictEqual(lines[0], "MyChain found no credential that could get a token. Configure one of:")
      assert.strictEqual(lines[1], "  1. A [unavailable]: A is not configured")
      assert.strictEqual(lines[2], "  2. B [needs sign-in]: B needs a sign-in")
      assert.strictEqual(lines[3], "  3. C [unavailable]: C is not configured")
      // the error round-trips through its schema (structured, not just text)
      const encoded = Schema.encodeSync(IdentityError.IdentityError)(error)
      const decoded = Schema.decodeUnknownSync(IdentityError.IdentityError)(JSON.parse(JSON.stringify(encoded)))
      assert.strictEqual(decoded.message, error.message)
    }))

  it.effect("a nested chain contributes its links' errors and stops the outer chain when it stopped", () =>
    Effect.gen(function*() {
      const inner = ChainedTokenCredential.makeWith([
        stub("A", "unavailable").service,
        stub("B", "unavailable").service
      ], {
        name: "Inner"
      })
      const last = stub("C", "unavailable")
      const error = chainFailure(yield* Effect.exit(ChainedTokenCredential.make(inner, last.service).getToken(SCOPE)))
      assert.deepStrictEqual(error.errors.map((e) => e.credential), ["A", "B", "C"])

      const stopping = ChainedTokenCredential.make(stub("X", "failed").service)
      const after = stub("Y", "token")
      const stopped = chainFailure(
        yield* Effect.exit(ChainedTokenCredential.make(stopping, after.service).getToken(SCOPE))
      )
      assert.strictEqual(after.state.calls, 0)
      assert.deepStrictEqual(stopped.errors.map((e) => e.credential), ["X"])
    }))

  it.effect("passes the scopes and options to every link", () =>
    Effect.gen(function*() {
      const seen: Array<unknown> = []
      const spy = (name: string, ok: boolean) =>
        TokenCredential.make(name, (scopes, options) => {
          seen.push([name, scopes, options])
          return ok
            ? Effect.succeed(AccessToken.make({ token: "t", obtainedAtMillis: T0, expiresOnMillis: T0 + 60_000 }))
            : Effect.fail(new IdentityError.CredentialUnavailableError({ credential: name, reason: "no" }))
        })
      const options = { tenantId: "other", claims: "{}", enableCae: true }
      yield* ChainedTokenCredential.make(spy("A", false), spy("B", true)).getToken([SCOPE], options)
      assert.deepStrictEqual(seen, [["A", [SCOPE], options], ["B", [SCOPE], options]])
    }))

  it.effect("builds each link layer once and keeps its cache across calls", () =>
    Effect.gen(function*() {
      yield* setNow
      const http = mockHttp(() => json(200, tokenBody("secret-token")))
      const a = stub("A", "unavailable")
      const chain = ChainedTokenCredential.layer(
        a.layer,
        ClientSecretCredential.layer({
          tenantId: "contoso.onmicrosoft.com",
          clientId: "app-1",
          clientSecret: Redacted.make("ok"),
          authorityHost: "https://login.example.test"
        }).pipe(Layer.provide(http.layer))
      )
      yield* Effect.gen(function*() {
        const first = yield* TokenCredential.getToken(SCOPE)
        const second = yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual(tokenValue(first), "secret-token")
        assert.strictEqual(tokenValue(second), "secret-token")
      }).pipe(Effect.provide(chain))
      assert.strictEqual(a.state.builds, 1)
      assert.strictEqual(a.state.calls, 2)
      assert.strictEqual(http.requests.length, 1)
    }).pipe(withEnv({})))

  it.effect("the same link layer used elsewhere in the application is built once and shared", () =>
    Effect.gen(function*() {
      const a = stub("A", "token")
      const app = Layer.merge(
        ChainedTokenCredential.layer(a.layer),
        Layer.effectDiscard(Effect.void).pipe(Layer.provide(a.layer))
      )
      yield* TokenCredential.getToken(SCOPE).pipe(Effect.provide(app))
      assert.strictEqual(a.state.builds, 1)
    }))

  it.effect("rememberWinner: starts at the last winner and walks the chain again when it becomes unavailable", () =>
    Effect.gen(function*() {
      const a = stub("A", "unavailable")
      const b = stub("B", "unavailable")
      const c = stub("C", "token")
      const chain = ChainedTokenCredential.makeWith([a.service, b.service, c.service], { rememberWinner: true })
      assert.strictEqual(tokenValue(yield* chain.getToken(SCOPE)), "C-token")
      assert.deepStrictEqual([a.state.calls, b.state.calls, c.state.calls], [1, 1, 1])
      // remembered: only C is asked
      assert.strictEqual(tokenValue(yield* chain.getToken(SCOPE)), "C-token")
      assert.deepStrictEqual([a.state.calls, b.state.calls, c.state.calls], [1, 1, 2])
      // C becomes unavailable, B now works: C first, then the chain from the top
      c.state.behaviour = "unavailable"
      b.state.behaviour = "token"
      assert.strictEqual(tokenValue(yield* chain.getToken(SCOPE)), "B-token")
      assert.deepStrictEqual([a.state.calls, b.state.calls, c.state.calls], [2, 2, 3])
      // B is the new winner
      assert.strictEqual(tokenValue(yield* chain.getToken(SCOPE)), "B-token")
      assert.deepStrictEqual([a.state.calls, b.state.calls, c.state.calls], [2, 3, 3])
      // everything unavailable: every link reported once, in chain order
      b.state.behaviour = "unavailable"
      const error = chainFailure(yield* Effect.exit(chain.getToken(SCOPE)))
      assert.deepStrictEqual(error.errors.map((e) => e.credential), ["A", "B", "C"])
      assert.deepStrictEqual([a.state.calls, b.state.calls, c.state.calls], [3, 4, 4])
      // and the memory is gone: the next call starts at the top
      c.state.behaviour = "token"
      yield* chain.getToken(SCOPE)
      assert.deepStrictEqual([a.state.calls, b.state.calls, c.state.calls], [4, 5, 5])
    }))

  it.effect("a token the first link holds fresh is returned at once: no walk, no span; stale or claims walk again", () =>
    Effect.gen(function*() {
      yield* setNow
      const { spans, tracer } = recordingTracer()
      let issued = 0
      const http = mockHttp(() => json(200, tokenBody(`secret-token-${++issued}`, 3600)))
      const before = stub("EnvironmentCredential", "unavailable")
      const secret = yield* Layer.build(
        ClientSecretCredential.layer({
          tenantId: "contoso.onmicrosoft.com",
          clientId: "app-1",
          clientSecret: Redacted.make(SECRET),
          authorityHost: "https://login.example.test"
        }).pipe(Layer.provide(http.layer))
      ).pipe(Effect.map(Context.get(TokenCredential.TokenCredential)))
      const chain = ChainedTokenCredential.makeWith([before.service, secret], { rememberWinner: true })
      const first = yield* chain.getToken(SCOPE).pipe(Effect.withTracer(tracer))
      assert.strictEqual(first.credential, "ClientSecretCredential")
      assert.strictEqual(before.state.calls, 1)
      assert.deepStrictEqual(spans.map((s) => s.name).slice(0, 2), [
        "ChainedTokenCredential.getToken",
        "ClientSecretCredential.requestToken"
      ])
      spans.length = 0
      for (let i = 0; i < 3; i++) {
        const again = yield* chain.getToken(SCOPE).pipe(Effect.withTracer(tracer))
        assert.strictEqual(tokenValue(again), "secret-token-1")
        assert.strictEqual(again.credential, "ClientSecretCredential")
      }
      assert.deepStrictEqual(spans.map((s) => s.name), [])
      assert.strictEqual(before.state.calls, 1)
      assert.strictEqual(http.requests.length, 1)
      // a claims challenge is never answered from the cache: the chain walks (from its winner) and a request is sent
      yield* chain.getToken(SCOPE, { claims: "{\"access_token\":{}}" }).pipe(Effect.withTracer(tracer))
      assert.strictEqual(http.requests.length, 2)
      assert.include(spans.map((s) => s.name), "ChainedTokenCredential.getToken")
      // past the refresh time the fast path steps aside: the chain asks the link, which serves its still-valid token
      // and refreshes it in the background
      spans.length = 0
      yield* TestClock.adjust("3500 seconds")
      const current = yield* chain.getToken(SCOPE).pipe(Effect.withTracer(tracer))
      assert.strictEqual(tokenValue(current), "secret-token-2")
      assert.include(spans.map((s) => s.name), "ChainedTokenCredential.getToken")
      let latest = current
      for (let i = 0; i < 50 && tokenValue(latest) !== "secret-token-3"; i++) {
        yield* Effect.yieldNow()
        latest = yield* chain.getToken(SCOPE)
      }
      assert.strictEqual(tokenValue(latest), "secret-token-3")
      assert.strictEqual(http.requests.length, 3)
      // and the refreshed token is served by the fast path again
      spans.length = 0
      assert.strictEqual(tokenValue(yield* chain.getToken(SCOPE).pipe(Effect.withTracer(tracer))), "secret-token-3")
      assert.deepStrictEqual(spans.map((s) => s.name), [])
    }).pipe(Effect.scoped, withEnv({})))

  it.effect("rememberWinner: a remembered link that fails to authenticate still stops the chain", () =>
    Effect.gen(function*() {
      const a = stub("A", "token")
      const b = stub("B", "token")
      const chain = ChainedTokenCredential.makeWith([a.service, b.service], { rememberWinner: true })
      yield* chain.getToken(SCOPE)
      a.state.behaviour = "failed"
      const error = chainFailure(yield* Effect.exit(chain.getToken(SCOPE)))
      assert.strictEqual(b.state.calls, 0)
      assert.deepStrictEqual(error.errors.map((e) => e._tag), ["ClientAuthenticationError"])
    }))

  it.effect("a single-link chain still reports through ChainedAuthenticationError", () =>
    Effect.gen(function*() {
      const error = chainFailure(
        yield* Effect.exit(ChainedTokenCredential.make(stub("Only", "unavailable").service).getToken(SCOPE))
      )
      assert.deepStrictEqual(error.errors.map((e) => e.credential), ["Only"])
      assert.isTrue(IdentityError.isIdentityError(error))
    }))

  it.effect("layerWith names the chain", () =>
    Effect.gen(function*() {
      const error = chainFailure(
        yield* Effect.exit(TokenCredential.getToken(SCOPE)).pipe(
          Effect.provide(ChainedTokenCredential.layerWith({ name: "Named" }, stub("A", "unavailable").layer))
        )
      )
      assert.strictEqual(error.credential, "Named")
      const service = yield* TokenCredential.TokenCredential.pipe(
        Effect.provide(ChainedTokenCredential.layerWith({ name: "Named" }, stub("A", "unavailable").layer))
      )
      assert.strictEqual(service.name, "Named")
    }))

  it.effect("logs each link's outcome and how long it took, at debug level", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const slow = TokenCredential.make("Slow", () =>
        Effect.sleep("1500 millis").pipe(
          Effect.zipRight(
            Effect.fail(new IdentityError.CredentialUnavailableError({ credential: "Slow", reason: "no" }))
          )
        ))
      const fiber = yield* Effect.fork(ChainedTokenCredential.make(slow, stub("Fast", "token").service).getToken(SCOPE))
      yield* TestClock.adjust("1500 millis")
      yield* Fiber.join(fiber)
      const lines = logs.lines.filter((l) => l.startsWith("DEBUG"))
      assert.include(lines[0], "ChainedTokenCredential: Slow is unavailable, trying the next link (1500 ms)")
      assert.include(lines[1], "ChainedTokenCredential: Fast returned a token (0 ms)")
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect.prop(
    "for any links: the first token wins unless a failure comes first; every link tried is reported in order",
    [FastCheck.array(FastCheck.constantFrom("token", "unavailable", "failed", "required"), {
      minLength: 1,
      maxLength: 8
    })],
    ([behaviours]) =>
      Effect.gen(function*() {
        const links = behaviours.map((b, i) => stub(`L${i}`, b as Behaviour))
        const exit = yield* Effect.exit(
          ChainedTokenCredential.makeWith(links.map((l) => l.service) as [TokenCredential.Service], {
            rememberWinner: false
          }).getToken(SCOPE)
        )
        const stop = behaviours.findIndex((b) => b === "token" || b === "failed")
        const tried = stop === -1 ? behaviours.length : stop + 1
        assert.deepStrictEqual(links.map((l) => l.state.calls), behaviours.map((_, i) => (i < tried ? 1 : 0)))
        if (stop !== -1 && behaviours[stop] === "token") {
          assert.isTrue(Exit.isSuccess(exit))
          if (Exit.isSuccess(exit)) assert.strictEqual(tokenValue(exit.value), `L${stop}-token`)
        } else {
          const error = chainFailure(exit)
          assert.deepStrictEqual(error.errors.map((e) => e.credential), links.slice(0, tried).map((_, i) => `L${i}`))
        }
      }),
    { fastCheck: { numRuns: 40 } }
  )
})

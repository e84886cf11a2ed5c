/**
 * A cache miss of a client-secret credential over the Node client's direct exchange (src/internal/tokenCache.ts
 * `Direct`, src/internal/confidentialClient.ts, src/internal/http.ts `sendDirect`): the first attempt is sent without
 * a fiber, and anything but a usable token continues on the usual path from that attempt. Here the exchange is a
 * fake that hands every request to the test, which answers it; the client behind it fails the test if it is used
 * while the direct path should be.
 *
 * The direct path runs only with the live `Clock` (its attempt timeout is a timer of its own), so these tests are
 * `it.live`; nothing in them waits on the clock: every request is answered by the test, and retries have no delay.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { afterEach, assert, describe, it, vi } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"
import { ClientSecretCredential, IdentityMetrics } from "../src/index.js"
import * as Http from "../src/internal/http.js"

const SECRET = "direct-secret-value"
const SCOPE = "https://vault.azure.net/.default"

interface Sent {
  readonly request: Http.WireRequest
  readonly answer: (result: Http.ExchangeResult) => void
}

/** A fake exchange: every request goes to `sent` for the test to answer; `aborted` counts aborts. */
const fakeExchange = Effect.gen(function*() {
  const sent = yield* Queue.unbounded<Sent>()
  const state = { sends: 0, aborted: 0 }
  const exchange: Http.Exchange = {
    accepts: () => true,
    send: (request, _limit, done) => {
      state.sends++
      Queue.unsafeOffer(sent, { request, answer: done })
      return () => {
        state.aborted++
      }
    }
  }
  return { sent, state, exchange }
})

const json = (status: number, body: unknown): Http.ExchangeResult => ({
  _tag: "Response",
  status,
  headers: { "content-type": "application/json" },
  text: JSON.stringify(body)
})

const tokenAnswer = (token: string) => json(200, { token_type: "Bearer", expires_in: 3599, access_token: token })

/** The client credentials get: the fake exchange attached; the client itself answers only when `fallback` is given. */
type Fallback = (request: HttpClientRequest.HttpClientRequest) => HttpClientResponse.HttpClientResponse

const clientWith = (exchange: Http.Exchange, fallback?: Fallback) => {
  const transport = HttpClient.make((request) =>
    fallback === undefined
      ? Effect.die(new Error("the client was used: the direct path should have been"))
      : Effect.succeed(fallback(request))
  )
  return Http.withTokenTransport(transport, transport, exchange)
}

const credential = (
  exchange: Http.Exchange,
  options: { readonly fallback?: Fallback } = {}
) =>
  ClientSecretCredential.make({
    tenantId: "tenant",
    clientId: "client",
    clientSecret: Redacted.make(SECRET),
    authorityHost: "https://login.example.test",
    retryPolicy: { baseDelayMillis: 0, maxDelayMillis: 0 }
  }).pipe(Effect.provideService(HttpClient.HttpClient, clientWith(exchange, options.fallback)))

/** Yields until every fiber is suspended (waiting), without any clock. */
const allWaiting = (fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      const statuses = yield* Effect.forEach(fibers, (f) => f.status)
      if (statuses.every((s) => s._tag === "Suspended")) return
      yield* Effect.yieldNow()
    }
    assert.fail("the callers never all waited")
  })

/** A direct request whose only caller was interrupted while it waited: the request is in flight, unanswered. */
const abandonedRequest = Effect.gen(function*() {
  const { exchange, sent, state } = yield* fakeExchange
  const service = yield* credential(exchange)
  const fiber = yield* Effect.fork(service.getToken(SCOPE))
  const first = yield* Queue.take(sent)
  yield* allWaiting([fiber])
  assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(fiber)))
  return { first, sent, service, state }
})

describe("direct token requests (a client secret over the Node client's exchange)", () => {
  it.live("a cache miss is one exchange with the request the client would send; then the token is cached", () =>
    Effect.gen(function*() {
      const { exchange, sent, state } = yield* fakeExchange
      const service = yield* credential(exchange)
      // the request runs in no fiber of its own: none is started under the caller while it is in flight
      const started = yield* Supervisor.track
      const fiber = yield* Effect.fork(Effect.supervised(service.getToken(SCOPE), started))
      const first = yield* Queue.take(sent)
      yield* allWaiting([fiber])
      assert.strictEqual((yield* started.value).length, 0)
      const { request } = first
      assert.strictEqual(request.method, "POST")
      assert.strictEqual(request.origin, "https://login.example.test")
      assert.strictEqual(request.path, "/tenant/oauth2/v2.0/token")
      const body = new TextDecoder().decode(request.body!)
      assert.deepStrictEqual(Object.fromEntries(new URLSearchParams(body)), {
        client_id: "client",
        grant_type: "client_credentials",
        client_secret: SECRET,
        scope: SCOPE
      })
      assert.strictEqual(request.headers["content-type"], "application/x-www-form-urlencoded")
      assert.strictEqual(request.headers["content-length"], String(request.body!.length))
      assert.match(
        request.headers["client-request-id"]!,
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
      )
      // the layer client's fixed headers
      assert.strictEqual(request.headers["x-client-sku"], "effect-azure-identity")
      assert.strictEqual(request.headers.accept, "application/json")
      assert.match(request.headers["user-agent"]!, /^effect-azure-identity\//)
      first.answer(tokenAnswer("token-1"))
      const token = yield* Fiber.join(fiber)
      assert.strictEqual(Redacted.value(token.token), "token-1")
      const again = yield* service.getToken(SCOPE)
      assert.strictEqual(Redacted.value(again.token), "token-1")
      assert.strictEqual(state.sends, 1)
    }).pipe(Effect.scoped))

  it.live("100 concurrent callers of a key share one exchange", () =>
    Effect.gen(function*() {
      const { exchange, sent, state } = yield* fakeExchange
      const service = yield* credential(exchange)
      const fibers = yield* Effect.forEach(Array.from({ length: 100 }), () => Effect.fork(service.getToken(SCOPE)))
      const first = yield* Queue.take(sent)
      yield* allWaiting(fibers)
      first.answer(tokenAnswer("shared"))
      const tokens = yield* Effect.forEach(fibers, Fiber.join)
      assert.isTrue(tokens.every((t) => Redacted.value(t.token) === "shared"))
      assert.strictEqual(state.sends, 1)
    }).pipe(Effect.scoped))

  it.live("an interrupted caller stops waiting; the request still fills the cache", () =>
    Effect.gen(function*() {
      const { exchange, sent, state } = yield* fakeExchange
      const service = yield* credential(exchange)
      const fiber = yield* Effect.fork(service.getToken(SCOPE))
      const first = yield* Queue.take(sent)
      const exit = yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.strictEqual(state.aborted, 0)
      first.answer(tokenAnswer("kept"))
      const token = yield* service.getToken(SCOPE)
      assert.strictEqual(Redacted.value(token.token), "kept")
      assert.strictEqual(state.sends, 1)
    }).pipe(Effect.scoped))

  it.live("callers interrupted while others wait (the first or a later one) leave; the rest, and later ones, get the token", () =>
    Effect.gen(function*() {
      const { exchange, sent, state } = yield* fakeExchange
      const service = yield* credential(exchange)
      const [a, b, c] = yield* Effect.forEach([1, 2, 3], () => Effect.fork(service.getToken(SCOPE)))
      const first = yield* Queue.take(sent)
      yield* allWaiting([a!, b!, c!])
      assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(a!)))
      assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(b!)))
      // joins after the first caller left
      const d = yield* Effect.fork(service.getToken(SCOPE))
      yield* allWaiting([c!, d])
      first.answer(tokenAnswer("for the rest"))
      for (const fiber of [c!, d]) assert.strictEqual(Redacted.value((yield* Fiber.join(fiber)).token), "for the rest")
      assert.strictEqual(state.sends, 1)
      assert.strictEqual(state.aborted, 0)
    }).pipe(Effect.scoped))

  it.live("closing the credential's scope aborts the request and interrupts its callers", () =>
    Effect.gen(function*() {
      const { exchange, sent, state } = yield* fakeExchange
      const scope = yield* Scope.make()
      const service = yield* Scope.extend(credential(exchange), scope)
      const fiber = yield* Effect.fork(service.getToken(SCOPE))
      const first = yield* Queue.take(sent)
      yield* allWaiting([fiber])
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.strictEqual(state.aborted, 1)
      first.answer(tokenAnswer("too late")) // ignored
    }))

  it.live("a transient failure continues on the usual path from that attempt: retried, then the token", () =>
    Effect.gen(function*() {
      const { exchange, sent, state } = yield* fakeExchange
      const service = yield* credential(exchange)
      const fiber = yield* Effect.fork(service.getToken(SCOPE))
      const first = yield* Queue.take(sent)
      first.answer(json(503, { error: "temporarily_unavailable" }))
      const second = yield* Queue.take(sent)
      assert.notStrictEqual(second.request.headers["client-request-id"], first.request.headers["client-request-id"])
      second.answer(tokenAnswer("after-retry"))
      const token = yield* Fiber.join(fiber)
      assert.strictEqual(Redacted.value(token.token), "after-retry")
      assert.strictEqual(state.sends, 2)
    }).pipe(Effect.scoped))

  it.live("with every caller gone, a transient failure still continues: retried in the layer's scope, then cached", () =>
    Effect.gen(function*() {
      const { first, sent, service, state } = yield* abandonedRequest
      first.answer(json(503, { error: "temporarily_unavailable" }))
      // the retry is sent with no caller waiting (before, the request ended here, and the next caller began again)
      const second = yield* Queue.take(sent)
      second.answer(tokenAnswer("kept for later"))
      const token = yield* service.getToken(SCOPE)
      assert.strictEqual(Redacted.value(token.token), "kept for later")
      assert.strictEqual(state.sends, 2)
    }).pipe(Effect.scoped))

  it.live("an error answer with every caller gone is held all the same: the next caller gets it without a request", () =>
    Effect.gen(function*() {
      const { first, service, state } = yield* abandonedRequest
      first.answer(json(401, { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret." }))
      // the held failure is stored by a fiber of the layer's scope: the next caller joins it or reads it
      const error = yield* Effect.flip(service.getToken(SCOPE))
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.strictEqual(state.sends, 1)
    }).pipe(Effect.scoped))

  it.live("an error answer is sent once, reported with its hint and without the secret it echoes, and held", () =>
    Effect.gen(function*() {
      const { exchange, sent, state } = yield* fakeExchange
      const service = yield* credential(exchange)
      const fiber = yield* Effect.fork(service.getToken(SCOPE))
      const first = yield* Queue.take(sent)
      first.answer(json(401, {
        error: "invalid_client",
        error_description: `AADSTS7000215: Invalid client secret provided (${SECRET}).`,
        error_codes: [7000215]
      }))
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause : undefined
      const text = JSON.stringify(error) + String(error)
      assert.notInclude(text, SECRET)
      const failure = yield* Effect.flip(service.getToken(SCOPE))
      assert.strictEqual(failure._tag, "ClientAuthenticationError")
      assert.include(failure.message, "The client secret is wrong")
      assert.notInclude(failure.message, SECRET)
      // the failure is held: the second call sent nothing
      assert.strictEqual(state.sends, 1)
    }).pipe(Effect.scoped))

  it.live("a direct request is counted like any other", () =>
    Effect.gen(function*() {
      const { exchange, sent } = yield* fakeExchange
      const name = "ClientSecretCredential"
      const counter = IdentityMetrics.tokenRequests.pipe(
        Metric.tagged("credential", name),
        Metric.tagged("outcome", "success")
      )
      const before = (yield* Metric.value(counter)).count
      const service = yield* credential(exchange)
      const fiber = yield* Effect.fork(service.getToken(SCOPE))
      ;(yield* Queue.take(sent)).answer(tokenAnswer("counted"))
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* Metric.value(counter)).count, before + 1)
    }).pipe(Effect.scoped))

  it.live("a fault of the direct path (the exchange throws) leaves the request to the usual path", () =>
    Effect.gen(function*() {
      const { exchange, sent, state } = yield* fakeExchange
      let throws = 1
      const faulty: Http.Exchange = {
        accepts: exchange.accepts,
        send: (request, limit, done) => {
          if (throws-- > 0) throw new Error("exchange fault")
          return exchange.send(request, limit, done)
        }
      }
      const service = yield* credential(faulty)
      const started = yield* Supervisor.track
      const fiber = yield* Effect.fork(Effect.supervised(service.getToken(SCOPE), started))
      const first = yield* Queue.take(sent)
      // the usual path: the request runs in a fiber of its own
      assert.strictEqual((yield* started.value).length, 1)
      first.answer(tokenAnswer("via-usual-path"))
      const token = yield* Fiber.join(fiber)
      assert.strictEqual(Redacted.value(token.token), "via-usual-path")
      assert.strictEqual(state.sends, 1)
    }).pipe(Effect.scoped))

  it.effect("with TestClock every request goes through the client (the direct path needs the live Clock)", () =>
    Effect.gen(function*() {
      const { exchange, state } = yield* fakeExchange
      let used = 0
      const service = yield* credential(exchange, {
        fallback: (request) => {
          used++
          return HttpClientResponse.fromWeb(
            request,
            new Response(JSON.stringify({ token_type: "Bearer", expires_in: 3599, access_token: "via-client" }), {
              status: 200,
              headers: { "content-type": "application/json" }
            })
          )
        }
      })
      const token = yield* service.getToken(SCOPE)
      assert.strictEqual(Redacted.value(token.token), "via-client")
      assert.strictEqual(used, 1)
      assert.strictEqual(state.sends, 0)
    }).pipe(Effect.scoped))
})

describe("sendDirect (the first attempt without a fiber)", () => {
  const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)
  const policy = Http.resolvePolicy({ attemptTimeoutMillis: 5_000 }, Http.defaultRetryPolicy)
  const form: Http.FormRequest = {
    url: "https://login.example.test/tenant/oauth2/v2.0/token",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new TextEncoder().encode("a=1")
  }
  const neverAnswers = () => {
    const state = { sends: 0, aborted: 0 }
    const exchange: Http.Exchange = {
      accepts: () => true,
      send: () => {
        state.sends++
        return () => void state.aborted++
      }
    }
    const client = HttpClient.make(() => Effect.die(new Error("not used")))
    return { state, client: Http.withTokenTransport(client, client, exchange) }
  }

  afterEach(() => {
    vi.useRealTimers()
  })

  it("an attempt with no answer ends at the attempt timeout (a timer of its own), aborted, as attempt 1", () => {
    vi.useFakeTimers()
    const { client, state } = neverAnswers()
    const outcomes: Array<Http.Outcome> = []
    const abort = Http.sendDirect(client, form, policy, liveClock, Context.empty(), (o) => outcomes.push(o))
    assert.isDefined(abort)
    vi.advanceTimersByTime(4_999)
    assert.strictEqual(outcomes.length, 0)
    vi.advanceTimersByTime(1)
    assert.strictEqual(outcomes.length, 1)
    const outcome = outcomes[0]!
    assert.strictEqual(outcome.attempts, 1)
    assert.strictEqual(outcome.url, "https://login.example.test/tenant/oauth2/v2.0/token")
    assert.isTrue(Either.isLeft(outcome.result) && outcome.result.left.kind === "timeout")
    assert.strictEqual(state.aborted, 1)
    // aborting afterwards reports nothing more
    abort!()
    vi.advanceTimersByTime(10_000)
    assert.strictEqual(outcomes.length, 1)
  })

  it("aborting stops the timer: nothing is reported", () => {
    vi.useFakeTimers()
    const { client, state } = neverAnswers()
    const outcomes: Array<Http.Outcome> = []
    const abort = Http.sendDirect(client, form, policy, liveClock, Context.empty(), (o) => outcomes.push(o))
    abort!()
    assert.strictEqual(state.aborted, 1)
    assert.strictEqual(vi.getTimerCount(), 0)
    vi.advanceTimersByTime(10_000)
    assert.strictEqual(outcomes.length, 0)
  })

  it("declines (sends nothing) without an exchange, with another Clock, or when the exchange declines the context", () => {
    const { client, state } = neverAnswers()
    const done = () => assert.fail("nothing should be reported")
    const plain = HttpClient.make(() => Effect.die(new Error("not used")))
    assert.isUndefined(Http.sendDirect(plain, form, policy, liveClock, Context.empty(), done))
    const otherClock: Clock.Clock = { ...liveClock, unsafeCurrentTimeMillis: () => 0 } as Clock.Clock
    assert.isUndefined(Http.sendDirect(client, form, policy, otherClock, Context.empty(), done))
    const declining = Http.withTokenTransport(plain, plain, { accepts: () => false, send: () => assert.fail("sent") })
    assert.isUndefined(Http.sendDirect(declining, form, policy, liveClock, Context.empty(), done))
    assert.strictEqual(state.sends, 0)
  })
})

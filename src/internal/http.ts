import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as RetryOptions from "../RetryOptions.js"
import { withAllHeadersRedacted } from "./scrub.js"

/**
 * A status with its own retry rules (IMDS 410: a longer first delay, its own retry budget on top of the shared one,
 * and a longer total budget). @internal
 */
export interface StatusRule {
  readonly status: number
  readonly baseDelayMillis: number
  /** Retries of this status, in a row; they also count towards `maxRetries + maxRetries of this rule` in total. */
  readonly maxRetries: number
  readonly maxElapsedMillis: number
}

/**
 * How a request is retried: the public {@link RetryOptions.RetryOptions} filled in, plus internal rules.
 *
 * @internal
 */
export interface RetryPolicy {
  readonly maxRetries: number
  readonly baseDelayMillis: number
  readonly maxDelayMillis: number
  readonly maxElapsedMillis: number
  readonly attemptTimeoutMillis: number
  readonly retryStatus: (status: number) => boolean
  /** Statuses retried under their own rules (IMDS 410). */
  readonly statusRules?: ReadonlyArray<StatusRule> | undefined
  /** Whether a failure without an HTTP answer is retried (default: all but an invalid URL or a too-large body). */
  readonly retryTransport?: ((failure: TransportFailure) => boolean) | undefined
  /** At most this many retries after connection failures (refused, unreachable, reset), in total. */
  readonly maxConnectionRetries?: number | undefined
  /** The most bytes read from a response body (default {@link maxBodyBytes}). */
  readonly maxBodyBytes?: number | undefined
}

/** @internal */
export const transientStatuses: ReadonlySet<number> = RetryOptions.transientStatuses

/** @internal */
export const defaultRetryPolicy: RetryPolicy = RetryOptions.defaults

/** The public options over a base policy: what the user left out keeps the base's value. @internal */
export const resolvePolicy = (options: RetryOptions.RetryOptions | undefined, base: RetryPolicy): RetryPolicy => {
  if (options === undefined) return base
  const pick = <K extends keyof RetryOptions.RetryOptions>(key: K): NonNullable<RetryOptions.RetryOptions[K]> =>
    (options[key] ?? base[key]) as NonNullable<RetryOptions.RetryOptions[K]>
  return {
    ...base,
    maxRetries: pick("maxRetries"),
    baseDelayMillis: pick("baseDelayMillis"),
    maxDelayMillis: pick("maxDelayMillis"),
    maxElapsedMillis: pick("maxElapsedMillis"),
    attemptTimeoutMillis: pick("attemptTimeoutMillis"),
    retryStatus: pick("retryStatus")
  }
}

/** The most bytes read from any response body: 1 MiB. Token answers are a few kilobytes. @internal */
export const maxBodyBytes = 1024 * 1024

/** A response whose body has been read in full. @internal */
export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
}

/** No usable HTTP answer: none at all, or one whose body is larger than the limit. @internal */
export interface TransportFailure {
  readonly _tag: "TransportFailure"
  readonly kind: "timeout" | "network" | "invalid-url" | "too-large"
  readonly description: string
  /** The status of an answer whose body was too large. */
  readonly status?: number | undefined
}

/** The result of a request with retries: the last answer, or why there was none. @internal */
export interface Outcome {
  readonly result: Either.Either<RawResponse, TransportFailure>
  readonly attempts: number
  readonly url: string
  readonly sentAtMillis: number
}

/** Origin and path of a URL: never its query string, user info or fragment (the last URL's split is kept). @internal */
export const safeUrl = (url: string): string => targetOf(url)?.safe ?? "<invalid url>"

const describeCause = (cause: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (typeof current === "object") {
      const c = current as { code?: unknown; message?: unknown; cause?: unknown }
      if (typeof c.code === "string") parts.push(c.code)
      else if (typeof c.message === "string" && c.message !== "" && depth > 0) parts.push(c.message)
      current = c.cause
    } else {
      current = undefined
    }
  }
  const text = parts.length === 0 ? "connection failed" : [...new Set(parts)].join(": ")
  // never echo anything that could carry a query string or body
  return text.replace(/https?:\/\/\S+/g, "<url>").slice(0, 200)
}

/**
 * The delay a `Retry-After` (seconds or HTTP date), `retry-after-ms` or `x-ms-retry-after-ms` header asks for.
 *
 * @internal
 */
export const retryAfterMillis = (
  headers: Readonly<Record<string, string>>,
  nowMillis: number
): Option.Option<number> => {
  for (const name of ["retry-after-ms", "x-ms-retry-after-ms"]) {
    const v = headers[name]
    if (v !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(v)) return Option.some(Math.max(0, Number(v)))
  }
  const value = headers["retry-after"]
  if (value === undefined) return Option.none()
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Option.some(Math.max(0, Number(value) * 1000))
  // An HTTP date (IMF-fixdate, the format of Date#toUTCString, which Date.parse is specified to read).
  const at = Date.parse(value.trim())
  return Number.isNaN(at) ? Option.none() : Option.some(Math.max(0, at - nowMillis))
}

/** Where `effect-azure-identity/node` attaches its lean token transport to the `HttpClient` it provides. */
const tokenTransportKey = Symbol.for("effect-azure-identity/tokenTransport")

/** Where the direct exchange is attached: to that client, and to the clients `makeClient` builds from it. */
const exchangeKey = Symbol.for("effect-azure-identity/exchange")

/** How a direct exchange ended: a whole answer, an answer whose body is over the limit, or no answer. @internal */
export type ExchangeResult =
  | {
    readonly _tag: "Response"
    readonly status: number
    readonly headers: Readonly<Record<string, string>>
    readonly text: string
  }
  | { readonly _tag: "TooLarge"; readonly status: number }
  | { readonly _tag: "Failed"; readonly cause: unknown }

/**
 * A transport that sends a request and reads its whole answer in one step, outside the `HttpClient` pipeline (no
 * response object, no body stream, no fiber): `effect-azure-identity/node` offers one on its undici `Agent` (see
 * `internal/nodeTransport.ts`). `sendWithRetry` uses it for an attempt when the client it is given carries it (the
 * client `makeClient` builds from the Node client) and the fiber's `Clock` is the live one (the attempt timeout is
 * then a timer of its own); otherwise every attempt goes through the `HttpClient`.
 *
 * @internal
 */
export interface Exchange {
  /**
   * Whether requests can be sent directly in this context (the same request through the client would be sent
   * differently otherwise, e.g. with request options from the context).
   */
  readonly accepts: (context: Context.Context<never>) => boolean
  /** Sends `request`, reads at most `limit` bytes of the answer, and calls `done` once, unless aborted first. */
  readonly send: (request: WireRequest, limit: number, done: (result: ExchangeResult) => void) => () => void
}

/** A request as it goes on the wire: where, and its headers and bytes. @internal */
export interface WireRequest {
  readonly method: string
  readonly origin: string
  /** The path with the query string (and fragment). */
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array | null
}

/** A request with a form body, before its URL is split and the client's fixed headers are added. @internal */
export interface FormRequest {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
}

/** A URL split for the wire (origin; path with query and fragment) and for messages (`safe`: see `safeUrl`). */
interface Target {
  readonly origin: string
  readonly path: string
  readonly safe: string
}

/** The last URL split: every attempt of a credential goes to the same few URLs. `undefined`: not a valid URL. */
let lastTargetUrl: string | undefined
let lastTarget: Target | undefined

const targetOf = (url: string): Target | undefined => {
  if (url === lastTargetUrl) return lastTarget
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  lastTargetUrl = url
  return lastTarget = parsed === undefined ? undefined : {
    origin: parsed.origin,
    path: parsed.pathname + parsed.search + parsed.hash,
    safe: `${parsed.origin}${parsed.pathname}`
  }
}

/**
 * `request` as it would go on the wire through the client (its headers with `fixed` on top), or `undefined` when
 * only the client can send it (a streamed or multipart body, URL parameters kept apart, an invalid URL).
 */
const wireRequest = (
  request: HttpClientRequest.HttpClientRequest,
  fixed: Readonly<Record<string, string>>
): WireRequest | undefined => {
  const body = request.body
  if (
    (body._tag !== "Empty" && body._tag !== "Uint8Array") || request.urlParams.length > 0 ||
    request.hash._tag === "Some"
  ) return undefined
  const target = targetOf(request.url)
  if (target === undefined) return undefined
  return {
    method: request.method,
    origin: target.origin,
    path: target.path,
    // `Object.assign`, not a spread: spreading two header records into a literal took 2–3 µs (V8's slow path)
    headers: Object.assign({}, request.headers, fixed),
    body: body._tag === "Uint8Array" ? body.body : null
  }
}

/** An exchange and the fixed headers of the client it was attached to. */
interface AttachedExchange {
  readonly exchange: Exchange
  readonly headers: Readonly<Record<string, string>>
}

const attach = <A extends object>(target: A, key: symbol, value: unknown): A =>
  Object.defineProperty(target, key, { value, enumerable: false })

/**
 * Attaches `transport` (and the direct `exchange` on the same connections) to `client`, which must be a client made
 * for this, not one shared with other code: token requests given exactly `client` are sent through `transport` or
 * `exchange` instead (see `internal/nodeTransport.ts`). A client made from it (`HttpClient.mapRequest`, …) is a new
 * object without them, and is used as it is.
 *
 * @internal
 */
export const withTokenTransport = (
  client: HttpClient.HttpClient,
  transport: HttpClient.HttpClient,
  exchange?: Exchange
): HttpClient.HttpClient => {
  attach(client, tokenTransportKey, transport)
  return exchange === undefined ? client : attach(client, exchangeKey, { exchange, headers: {} })
}

/** The client token requests go through: the lean transport attached to `client`, else `client` itself. @internal */
export const tokenTransport = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  (client as { readonly [tokenTransportKey]?: HttpClient.HttpClient })[tokenTransportKey] ?? client

const exchangeOf = (client: HttpClient.HttpClient): AttachedExchange | undefined =>
  (client as { readonly [exchangeKey]?: AttachedExchange })[exchangeKey]

/**
 * The client a credential layer builds once: fixed headers added to every request (`mapRequest`), and no trace
 * propagation headers sent to identity endpoints. Built on the client's token transport when it has one; a direct
 * exchange attached to `client` is attached to the new client too, with the same fixed headers.
 *
 * @internal
 */
export const makeClient = (
  client: HttpClient.HttpClient,
  headers: Readonly<Record<string, string>>
): HttpClient.HttpClient => {
  const made = tokenTransport(client).pipe(
    HttpClient.mapRequest(HttpClientRequest.setHeaders(headers)),
    HttpClient.withTracerPropagation(false)
  )
  const attached = exchangeOf(client)
  return attached === undefined
    ? made
    : attach(made, exchangeKey, { exchange: attached.exchange, headers: { ...attached.headers, ...headers } })
}

const decoder = new TextDecoder()

/** An answer whose body is larger than `limit` bytes (not read). */
const tooLargeFailure = (status: number, limit: number): TransportFailure => ({
  _tag: "TransportFailure",
  kind: "too-large",
  status,
  description: `the body is larger than ${limit} bytes`
})

/**
 * Reads a body as text, at most `limit` bytes: a larger `content-length` is refused before reading, and a body that
 * grows past the limit stops being read (the connection is released). `headers`: the response's headers, when the
 * caller has them already (a client may build them anew on every read of `response.headers`).
 *
 * @internal
 */
export const readText = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number,
  headers: Readonly<Record<string, string>> = response.headers
): Effect.Effect<string, HttpClientError.ResponseError | TransportFailure> => {
  const tooLarge = () => tooLargeFailure(response.status, limit)
  const declared = headers["content-length"]
  if (declared !== undefined && /^\d+$/.test(declared)) {
    if (Number(declared) > limit) return Effect.fail(tooLarge())
    // A declared length within the limit and no content coding: the HTTP client reads exactly that many bytes (a
    // longer body cannot be framed into this response), so the body is read whole, without a Stream per response
    // (its channel machinery was the largest per-request cost of a token request). With a content coding, a client
    // that decodes (fetch) could produce more than the declared bytes: that body is streamed with the cap.
    const coding = headers["content-encoding"]
    if (coding === undefined || coding.trim().toLowerCase() === "identity") {
      return Effect.map(response.arrayBuffer, (bytes) => decoder.decode(bytes))
    }
  }
  return Effect.suspend(() => {
    const chunks: Array<Uint8Array> = []
    let total = 0
    return response.stream.pipe(
      Stream.runForEach((chunk): Effect.Effect<void, TransportFailure> => {
        total += chunk.length
        if (total > limit) return Effect.fail(tooLarge())
        chunks.push(chunk)
        return Effect.void
      }),
      Effect.map(() => {
        const bytes = new Uint8Array(total)
        let at = 0
        for (const chunk of chunks) {
          bytes.set(chunk, at)
          at += chunk.length
        }
        return decoder.decode(bytes)
      })
    )
  })
}

/** What one attempt ended with, when it is a candidate for a retry. */
class AttemptFailed {
  readonly _tag = "AttemptFailed"
  constructor(
    readonly result: Either.Either<RawResponse, TransportFailure>,
    readonly url: string,
    readonly sentAtMillis: number
  ) {}
}

const statusOf = (input: unknown): number | undefined =>
  input instanceof AttemptFailed && Either.isRight(input.result) ? input.result.right.status : undefined

const isConnectionFailure = (input: unknown): boolean =>
  input instanceof AttemptFailed && Either.isLeft(input.result) && input.result.left.kind === "network"

/**
 * The retry schedule: exponential from `baseDelayMillis`, capped at `maxDelayMillis`, jittered to 50–100 %
 * (through `Random`), replaced by a `Retry-After` header when the answer has one; it stops after `maxRetries`, when
 * the shared budget (`total`) is spent, or when the next attempt would start later than `maxElapsedMillis` after
 * `startedAt`.
 */
const backoff = (options: {
  readonly baseDelayMillis: number
  readonly maxDelayMillis: number
  readonly maxRetries: number
  readonly maxElapsedMillis: number
  readonly startedAt: number
  readonly total: { n: number }
  readonly maxTotal: number
  readonly retryable: (input: unknown) => boolean
}): Schedule.Schedule<Duration.Duration, unknown> =>
  Schedule.exponential(Duration.millis(options.baseDelayMillis)).pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, Duration.millis(options.maxDelayMillis))),
    Schedule.jitteredWith({ min: 0.5, max: 1 }),
    Schedule.intersect(Schedule.identity<unknown>()),
    Schedule.modifyDelayEffect(([, input], delay) => {
      const headers = input instanceof AttemptFailed && Either.isRight(input.result)
        ? input.result.right.headers
        : undefined
      return headers === undefined ? Effect.succeed(delay) : Effect.map(
        Clock.currentTimeMillis,
        (now) => Option.match(retryAfterMillis(headers, now), { onNone: () => delay, onSome: Duration.millis })
      )
    }),
    Schedule.whileInput(options.retryable),
    Schedule.intersect(Schedule.recurs(options.maxRetries)),
    Schedule.delays,
    Schedule.checkEffect((_, delay) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) => now + Duration.toMillis(delay) - options.startedAt <= options.maxElapsedMillis
      )
    ),
    Schedule.check(() => options.total.n < options.maxTotal ? (options.total.n++, true) : false)
  )

const isAttemptFailed = (error: unknown): error is AttemptFailed => error instanceof AttemptFailed

/** A failure of the HTTP client as a transport failure. */
const transportFailure = (
  error: HttpClientError.HttpClientError | TransportFailure
): TransportFailure =>
  error._tag === "TransportFailure"
    ? error
    : {
      _tag: "TransportFailure",
      kind: error._tag === "RequestError" && error.reason === "InvalidUrl" ? "invalid-url" : "network",
      description: describeCause(error.cause)
    }

/** The `Clock` every fiber has unless a program or test replaces it (`TestClock`, `Effect.withClock`). */
const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

/** The longest delay a timer can have; the live `Clock` treats a longer duration as no timeout at all. */
const maxTimerMillis = 2 ** 31 - 1

/** The attempt timeout's failure. */
const timeoutFailure = (timeoutMillis: number): TransportFailure => ({
  _tag: "TransportFailure",
  kind: "timeout",
  description: `no answer within ${timeoutMillis / 1000} s`
})

/**
 * One attempt through a direct exchange, without a fiber: `done` is called once with the answer or why there was
 * none, unless the returned function (abort) is called first. The attempt timeout is a timer of its own (the same
 * timer the live `Clock` would set).
 */
const exchangeAttempt = (
  direct: AttachedExchange,
  request: WireRequest,
  limit: number,
  timeoutMillis: number,
  done: (result: Either.Either<RawResponse, TransportFailure>) => void
): () => void => {
  let settled = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const finish = (result: Either.Either<RawResponse, TransportFailure>) => {
    if (settled) return
    settled = true
    if (timer !== undefined) clearTimeout(timer)
    done(result)
  }
  const abort = direct.exchange.send(request, limit, (result) => {
    switch (result._tag) {
      case "Response":
        return finish(Either.right(result))
      case "TooLarge":
        return finish(Either.left(tooLargeFailure(result.status, limit)))
      case "Failed":
        return finish(
          Either.left({ _tag: "TransportFailure", kind: "network", description: describeCause(result.cause) })
        )
    }
  })
  if (!settled && timeoutMillis <= maxTimerMillis) {
    timer = setTimeout(() => {
      abort()
      finish(Either.left(timeoutFailure(timeoutMillis)))
    }, timeoutMillis)
  }
  return () => {
    settled = true
    if (timer !== undefined) clearTimeout(timer)
    abort()
  }
}

/** {@link exchangeAttempt} as one asynchronous step: interrupting it aborts the request. */
const exchangeOnce = (
  direct: AttachedExchange,
  request: WireRequest,
  limit: number,
  timeoutMillis: number
): Effect.Effect<Either.Either<RawResponse, TransportFailure>> =>
  Effect.async<Either.Either<RawResponse, TransportFailure>>((resume) => {
    const abort = exchangeAttempt(direct, request, limit, timeoutMillis, (result) => resume(Effect.succeed(result)))
    return Effect.sync(abort)
  })

/**
 * A first attempt made outside any fiber: through the direct exchange of `client`, when the fiber whose `clock`
 * and `context` these are has the live `Clock` and the exchange sends requests in that context. Returns `undefined`
 * (and sends nothing) when it cannot; else calls `done` once with the attempt's outcome (as `sendWithRetry` would
 * count it: attempt 1), unless the returned function (abort) is called first. Continue with
 * `sendWithRetry(…, first)` when the outcome is not the answer wanted.
 *
 * @internal
 */
export const sendDirect = (
  client: HttpClient.HttpClient,
  request: FormRequest,
  policy: RetryPolicy,
  clock: Clock.Clock,
  context: Context.Context<never>,
  done: (outcome: Outcome) => void
): (() => void) | undefined => {
  const direct = exchangeOf(client)
  if (direct === undefined || clock !== liveClock || !direct.exchange.accepts(context)) return undefined
  const target = targetOf(request.url)
  if (target === undefined) return undefined
  const url = safeUrl(request.url)
  const sentAtMillis = clock.unsafeCurrentTimeMillis()
  return exchangeAttempt(
    direct,
    {
      method: "POST",
      origin: target.origin,
      path: target.path,
      headers: Object.assign({}, request.headers, direct.headers),
      body: request.body
    },
    policy.maxBodyBytes ?? maxBodyBytes,
    policy.attemptTimeoutMillis,
    (result) => done({ result, attempts: 1, url, sentAtMillis })
  )
}

/**
 * Sends the request built by `makeRequest` (built anew for every attempt, so an assertion is fresh each time),
 * reads its body (at most `maxBodyBytes`), and retries transport failures and retryable statuses on a `Schedule`
 * made from `policy`. All waiting goes through `Clock`, so tests drive it with `TestClock`.
 *
 * The first attempt runs on its own: the retry schedules are built and run only once an attempt has failed in a way
 * that is retried (they then see that failure first, exactly as if they had been running from the start). A token
 * request that succeeds at once pays for none of it.
 *
 * @internal
 */
export const sendWithRetry = <E, R>(
  client: HttpClient.HttpClient,
  makeRequest: Effect.Effect<HttpClientRequest.HttpClientRequest, E, R>,
  policy: RetryPolicy,
  first?: Outcome
): Effect.Effect<Outcome, E, R> =>
  Effect.clockWith((clock) => {
    const startedAt = first?.sentAtMillis ?? clock.unsafeCurrentTimeMillis()
    let attempts = first?.attempts ?? 0
    const limit = policy.maxBodyBytes ?? maxBodyBytes
    const rules = policy.statusRules ?? []
    const direct = exchangeOf(client)
    const ruleFor = (input: unknown) => {
      const status = statusOf(input)
      return status === undefined ? undefined : rules.find((r) => r.status === status)
    }
    const timeout = {
      duration: Duration.millis(policy.attemptTimeoutMillis),
      onTimeout: () => timeoutFailure(policy.attemptTimeoutMillis)
    }

    const settle = (
      result: Either.Either<RawResponse, TransportFailure>,
      url: string,
      sentAtMillis: number
    ): Effect.Effect<Outcome, AttemptFailed> => {
      const retryable = Either.isLeft(result)
        ? result.left.kind !== "invalid-url" && result.left.kind !== "too-large" &&
          (policy.retryTransport?.(result.left) ?? true)
        : policy.retryStatus(result.right.status) || rules.some((r) => r.status === result.right.status)
      return retryable
        ? Effect.fail(new AttemptFailed(result, url, sentAtMillis))
        : Effect.succeed({ result, attempts, url, sentAtMillis })
    }

    // Through the client: the platform's pipeline, the attempt timeout on the fiber's `Clock`, and every header
    // value redacted in the client's spans (a server can echo the request into any response header).
    const viaClient = (request: HttpClientRequest.HttpClientRequest) =>
      client.execute(request).pipe(
        Effect.flatMap((response) => {
          const headers = response.headers
          return Effect.map(readText(response, limit, headers), (text): RawResponse => ({
            status: response.status,
            headers: { ...headers },
            text
          }))
        }),
        Effect.timeoutFail(timeout),
        withAllHeadersRedacted,
        Effect.match({
          onFailure: (error) => Either.left(transportFailure(error)),
          onSuccess: (raw) => Either.right(raw)
        })
      )

    const attempt: Effect.Effect<Outcome, E | AttemptFailed, R> = Effect.flatMap(makeRequest, (request) => {
      const url = safeUrl(request.url)
      const sentAtMillis = clock.unsafeCurrentTimeMillis()
      attempts++
      const wire = direct !== undefined && clock === liveClock ? wireRequest(request, direct.headers) : undefined
      const result: Effect.Effect<Either.Either<RawResponse, TransportFailure>> = wire !== undefined
        ? Effect.withFiberRuntime((fiber) =>
          direct!.exchange.accepts(fiber.currentContext)
            ? exchangeOnce(direct!, wire, limit, policy.attemptTimeoutMillis)
            : viaClient(request)
        )
        : viaClient(request)
      return Effect.flatMap(result, (result) => settle(result, url, sentAtMillis))
    })

    // Only after a retryable failure: the schedules, fed that failure first.
    const retrying = (first: AttemptFailed): Effect.Effect<Outcome, E, R> => {
      const total = { n: 0 }
      let connectionRetries = 0
      let replay: AttemptFailed | undefined = first
      const again: Effect.Effect<Outcome, E | AttemptFailed, R> = Effect.suspend(() => {
        if (replay === undefined) return attempt
        const failed = replay
        replay = undefined
        return Effect.fail(failed)
      })
      const connectionBudget = (input: unknown) =>
        !isConnectionFailure(input) || policy.maxConnectionRetries === undefined ||
        (connectionRetries < policy.maxConnectionRetries ? (connectionRetries++, true) : false)

      // statuses with their own rules (IMDS 410) retry in an inner loop; everything else in the outer one. Both draw
      // on one shared count, so answers that alternate never restart the budget.
      const inner = rules.reduce<Effect.Effect<Outcome, E | AttemptFailed, R>>(
        (self, rule) =>
          Effect.retry(
            self,
            backoff({
              baseDelayMillis: Math.max(policy.baseDelayMillis, rule.baseDelayMillis),
              maxDelayMillis: policy.maxDelayMillis,
              maxRetries: rule.maxRetries,
              maxElapsedMillis: Math.max(policy.maxElapsedMillis, rule.maxElapsedMillis),
              startedAt,
              total,
              maxTotal: policy.maxRetries + rule.maxRetries,
              retryable: (input) => ruleFor(input) === rule
            })
          ),
        again
      )
      const outer = Effect.retry(
        inner,
        backoff({
          baseDelayMillis: policy.baseDelayMillis,
          maxDelayMillis: policy.maxDelayMillis,
          maxRetries: policy.maxRetries,
          maxElapsedMillis: policy.maxElapsedMillis,
          startedAt,
          total,
          maxTotal: policy.maxRetries,
          retryable: (input) => input instanceof AttemptFailed && ruleFor(input) === undefined
        }).pipe(Schedule.check((input) => connectionBudget(input)))
      )
      return Effect.catchIf(outer, isAttemptFailed, (failed) =>
        Effect.succeed<Outcome>({
          result: failed.result,
          attempts,
          url: failed.url,
          sentAtMillis: failed.sentAtMillis
        }))
    }

    // An attempt already made (`sendDirect`) counts as the first: settled here, then retried as usual.
    const firstAttempt = first === undefined ? attempt : settle(first.result, first.url, first.sentAtMillis)
    return Effect.catchIf(firstAttempt, isAttemptFailed, retrying)
  })

/** The `<title>` of an HTML page, to say which proxy or portal answered. @internal */
export const htmlTitle = (text: string): Option.Option<string> => {
  const match = /<title[^>]*>([^<]{1,200})<\/title>/i.exec(text)
  return match && match[1] !== undefined ? Option.some(match[1].trim().slice(0, 100)) : Option.none()
}

/** JSON nested deeper than this is refused: no token or error body comes close. @internal */
export const maxJsonDepth = 64

/** How deeply a parsed JSON value nests, counted without recursion (stops once past `limit`). */
const depthExceeds = (value: unknown, limit: number): boolean => {
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!
    if (typeof current !== "object" || current === null) continue
    if (depth > limit) return true
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1])
    }
  }
  return false
}

/** Parses JSON of any depth (for callers that describe and decode it without recursing, as the MSAL cache does). @internal */
export const parseRaw = (text: string): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(text))
  } catch {
    return Option.none()
  }
}

/** Describes a body that is not the JSON we expected, without echoing it. @internal */
export const describeBody = (response: RawResponse): string => {
  const type = response.headers["content-type"] ?? "no content type"
  if (response.text.trim() === "") return "an empty body"
  const title = htmlTitle(response.text)
  if (Option.isSome(title)) return `an HTML page titled ${JSON.stringify(title.value)} (${type})`
  if (Option.isSome(parseRaw(response.text)) && Option.isNone(parseJson(response.text))) {
    return `a JSON body nested more than ${maxJsonDepth} levels deep (${type}, ${response.text.length} bytes)`
  }
  return `a body that is not JSON (${type}, ${response.text.length} bytes)`
}

/**
 * Parses a JSON body. JSON nested more than {@link maxJsonDepth} levels is refused like invalid JSON: decoding and
 * describing such a value would recurse that deep.
 *
 * @internal
 */
export const parseJson = (text: string): Option.Option<unknown> =>
  Option.filter(parseRaw(text), (value) => !depthExceeds(value, maxJsonDepth))

/** A random UUID v4 drawn through `Random` (four 32-bit draws), so tests can fix it. @internal */
export const randomUuid: Effect.Effect<string> = Effect.randomWith((random) =>
  Effect.gen(function*() {
    const words: Array<number> = []
    for (let i = 0; i < 4; i++) words.push(yield* random.nextIntBetween(0, 0x1_0000_0000))
    const bytes: Array<number> = []
    for (const word of words) bytes.push(word >>> 24, (word >>> 16) & 0xff, (word >>> 8) & 0xff, word & 0xff)
    bytes[6] = (bytes[6]! & 0x0f) | 0x40
    bytes[8] = (bytes[8]! & 0x3f) | 0x80
    const hex = bytes.map((b) => b.toString(16).padStart(2, "0")).join("")
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  })
)

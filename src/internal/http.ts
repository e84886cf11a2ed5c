import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Random from "effect/Random"

/**
 * How a request is retried. Delays grow `baseDelayMillis · 2^n`, capped at `maxDelayMillis`, jittered to 50–100 %
 * (through `Random`); a `Retry-After` / `retry-after-ms` / `x-ms-retry-after-ms` header replaces the computed delay.
 * Retrying stops after `maxRetries` (counted per status, and in total: answers that alternate do not restart the
 * count; a status with its own budget, `statusMaxRetries`, may add that many), or when the next attempt would start
 * later than `maxElapsedMillis` after the first one.
 *
 * @internal
 */
export interface RetryPolicy {
  readonly maxRetries: number
  readonly baseDelayMillis: number
  readonly maxDelayMillis: number
  readonly maxElapsedMillis: number
  /** Each attempt (connect, send, read the body) must finish within this. */
  readonly attemptTimeoutMillis: number
  readonly retryStatus: (status: number) => boolean
  /** Extra per-status control: the smallest base delay, and a per-status retry budget (IMDS 410). */
  readonly statusBaseDelayMillis?: ((status: number) => number | undefined) | undefined
  readonly statusMaxRetries?: ((status: number) => number | undefined) | undefined
  readonly statusMinElapsedMillis?: ((status: number) => number | undefined) | undefined
  /** Whether a failure without an HTTP answer is retried (default: all but an invalid URL). */
  readonly retryTransport?: ((failure: TransportFailure) => boolean) | undefined
}

/** @internal */
export const transientStatuses: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])

/** @internal */
export const defaultRetryPolicy: RetryPolicy = {
  maxRetries: 3,
  baseDelayMillis: 1000,
  maxDelayMillis: 30_000,
  maxElapsedMillis: 60_000,
  attemptTimeoutMillis: 20_000,
  retryStatus: (status) => transientStatuses.has(status)
}

/** A response whose body has been read in full. @internal */
export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
}

/** No HTTP answer at all. @internal */
export interface TransportFailure {
  readonly _tag: "TransportFailure"
  readonly kind: "timeout" | "network" | "invalid-url"
  readonly description: string
}

/** The result of a request with retries: the last answer, or why there was none. @internal */
export interface Outcome {
  readonly result: Either.Either<RawResponse, TransportFailure>
  readonly attempts: number
  readonly url: string
  readonly sentAtMillis: number
}

/** Origin and path of a URL: never its query string, user info or fragment. @internal */
export const safeUrl = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return "<invalid url>"
  }
}

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

const headersRecord = (headers: Readonly<Record<string, string>>): Record<string, string> => ({ ...headers })

/**
 * Sends the request built by `makeRequest` (built anew for every attempt, so an assertion is fresh each time),
 * reads its body, and retries transport failures and retryable statuses under `policy`. All waiting goes through
 * `Clock`, so tests drive it with `TestClock`.
 *
 * @internal
 */
export const sendWithRetry = <E, R>(
  client: HttpClient.HttpClient,
  makeRequest: Effect.Effect<HttpClientRequest.HttpClientRequest, E, R>,
  policy: RetryPolicy
): Effect.Effect<Outcome, E, R> =>
  Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    let attempt = 0
    let retries = 0
    let retriesForStatus = 0
    let lastStatus: number | undefined
    while (true) {
      const request = yield* makeRequest
      const url = safeUrl(request.url)
      const sentAtMillis = yield* Clock.currentTimeMillis
      const result: Either.Either<RawResponse, TransportFailure> = yield* client.execute(request).pipe(
        Effect.flatMap((response) =>
          Effect.map(response.text, (text): RawResponse => ({
            status: response.status,
            headers: headersRecord(response.headers),
            text
          }))
        ),
        Effect.scoped,
        Effect.timeoutFail({
          duration: Duration.millis(policy.attemptTimeoutMillis),
          onTimeout: (): TransportFailure => ({
            _tag: "TransportFailure",
            kind: "timeout",
            description: `no answer within ${policy.attemptTimeoutMillis / 1000} s`
          })
        }),
        Effect.mapError((error): TransportFailure =>
          "_tag" in error && error._tag === "TransportFailure"
            ? error
            : {
              _tag: "TransportFailure",
              kind: error._tag === "RequestError" && error.reason === "InvalidUrl" ? "invalid-url" : "network",
              description: describeCause(error.cause)
            }
        ),
        Effect.either
      )
      attempt++
      const now = yield* Clock.currentTimeMillis
      const status = Either.isRight(result) ? result.right.status : undefined
      const retryable = Either.isLeft(result)
        ? result.left.kind !== "invalid-url" && (policy.retryTransport?.(result.left) ?? true)
        : policy.retryStatus(result.right.status)
      if (!retryable) return { result, attempts: attempt, url, sentAtMillis }
      if (status !== lastStatus) retriesForStatus = 0
      lastStatus = status
      const statusBudget = status === undefined ? undefined : policy.statusMaxRetries?.(status)
      const maxRetries = statusBudget ?? policy.maxRetries
      // Answers that alternate (500, reset, 500, …) restart the per-status count: the total stays bounded.
      if (retriesForStatus >= maxRetries || retries >= policy.maxRetries + (statusBudget ?? 0)) {
        return { result, attempts: attempt, url, sentAtMillis }
      }
      const base = Math.max(
        policy.baseDelayMillis,
        (status === undefined ? undefined : policy.statusBaseDelayMillis?.(status)) ?? 0
      )
      const backoff = Math.min(policy.maxDelayMillis, base * 2 ** retriesForStatus)
      const fromHeader = Either.isRight(result) ? retryAfterMillis(result.right.headers, now) : Option.none()
      const delay = Option.isSome(fromHeader)
        ? fromHeader.value
        : Math.round(backoff * (yield* Random.nextRange(0.5, 1)))
      const budget = Math.max(
        policy.maxElapsedMillis,
        (status === undefined ? undefined : policy.statusMinElapsedMillis?.(status)) ?? 0
      )
      if (now + delay - startedAt > budget) return { result, attempts: attempt, url, sentAtMillis }
      retries++
      retriesForStatus++
      yield* Effect.sleep(Duration.millis(delay))
    }
  })

/** The `<title>` of an HTML page, to say which proxy or portal answered. @internal */
export const htmlTitle = (text: string): Option.Option<string> => {
  const match = /<title[^>]*>([^<]{1,200})<\/title>/i.exec(text)
  return match && match[1] !== undefined ? Option.some(match[1].trim().slice(0, 100)) : Option.none()
}

/** Describes a body that is not the JSON we expected, without echoing it. @internal */
export const describeBody = (response: RawResponse): string => {
  const type = response.headers["content-type"] ?? "no content type"
  if (response.text.trim() === "") return "an empty body"
  const title = htmlTitle(response.text)
  if (Option.isSome(title)) return `an HTML page titled ${JSON.stringify(title.value)} (${type})`
  return `a body that is not JSON (${type}, ${response.text.length} bytes)`
}

/** Parses a JSON body. @internal */
export const parseJson = (text: string): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(text))
  } catch {
    return Option.none()
  }
}

/** A random UUID v4 drawn through `Random`, so tests can fix it. @internal */
export const randomUuid: Effect.Effect<string> = Effect.gen(function*() {
  const bytes: Array<number> = []
  for (let i = 0; i < 16; i++) bytes.push(yield* Random.nextIntBetween(0, 256))
  bytes[6] = (bytes[6]! & 0x0f) | 0x40
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.map((b) => b.toString(16).padStart(2, "0")).join("")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
})

/**
 * What every route shares: the base URL a client addressed, forms and query strings decoded with Schema (a field is
 * its first value, as `URLSearchParams.get` reads it), the 1 MiB cap on request bodies, and the responses routes
 * answer with (JSON, text, redirects, Entra-shaped errors).
 *
 * @internal
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { EntraError } from "./responses.js"
import { entraError, entraErrorBody } from "./responses.js"
import type { State } from "./state.js"

/** The largest request body the emulator reads: 1 MiB. @internal */
export const maxBodyBytes = 1024 * 1024

/** A form or query field: its first value (an empty value stays `""`). @internal */
export const field = Schema.optionalWith(
  Schema.transform(Schema.Union(Schema.String, Schema.Array(Schema.String)), Schema.String, {
    strict: true,
    decode: (value) => typeof value === "string" ? value : value[0] ?? "",
    encode: (value) => value
  }),
  { exact: true }
)

/** A field's value, an empty one counting as absent (as Entra reads parameters). @internal */
export const present = (value: string | undefined): string | undefined => value === "" ? undefined : value

type Fields = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/** Decodes what no request sent: every field absent. */
const absent = <A, I extends Fields>(schema: Schema.Schema<A, I>): Effect.Effect<A> =>
  Effect.orDie(Schema.decodeUnknown(schema)({}))

/** Entra's answer to a body over the cap (the nearest code Entra has: AADSTS90015, a request too long). @internal */
export const bodyTooLarge: EntraError = entraError(
  413,
  "invalid_request",
  90015,
  `The request body is too large: the emulator reads at most ${maxBodyBytes} bytes.`
)

const isForm = (contentType: string | undefined) =>
  contentType !== undefined && contentType.toLowerCase().startsWith("application/x-www-form-urlencoded")

const overflowed = (error: unknown) =>
  typeof error === "object" && error !== null && "cause" in error && error.cause instanceof Error &&
  error.cause.message === "maxBytes exceeded"

/** The body of a chunked request, read once: the token route and its grant both decode it. */
const chunkedBodies = new WeakMap<
  HttpServerRequest.HttpServerRequest,
  Effect.Effect<Option.Option<UrlParams.UrlParams>>
>()

/**
 * A body sent without `Content-Length` (chunked): read to its end, keeping at most 1 MiB (the rest is discarded, so
 * memory stays bounded and the connection stays usable); `None` when it was longer. A body that cannot be read is
 * empty.
 */
const chunkedBody = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<Option.Option<UrlParams.UrlParams>> => {
  const cached = chunkedBodies.get(request)
  if (cached !== undefined) return cached
  const read = Effect.gen(function*() {
    const kept: Array<Uint8Array> = []
    const size = yield* Stream.runFold(request.stream, 0, (size, chunk) => {
      if (size + chunk.length <= maxBodyBytes) kept.push(chunk)
      return size + chunk.length
    })
    if (size > maxBodyBytes) return Option.none()
    return Option.some(UrlParams.fromInput(new URLSearchParams(new TextDecoder().decode(Buffer.concat(kept)))))
  }).pipe(Effect.orElseSucceed(() => Option.some(UrlParams.empty)))
  const once = Effect.runSync(Effect.cached(read))
  chunkedBodies.set(request, once)
  return once
}

/**
 * The `application/x-www-form-urlencoded` body of a POST, decoded by `schema` (whose fields are all {@link field}s).
 * Another method or content type, or a body that cannot be read, is an empty form; a body over 1 MiB fails with
 * {@link bodyTooLarge}, and the connection stays usable: one that announces a larger `Content-Length` is refused
 * without being read, a chunked one is read to its end but only 1 MiB of it kept.
 *
 * @internal
 */
export const readForm = <A, I extends Fields>(
  schema: Schema.Schema<A, I>
): Effect.Effect<A, EntraError, HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    if (request.method !== "POST" || !isForm(request.headers["content-type"])) return absent(schema)
    const length = request.headers["content-length"]
    if (length === undefined) {
      return Effect.flatMap(chunkedBody(request), (body) =>
        Option.isNone(body)
          ? Effect.fail(bodyTooLarge)
          : UrlParams.schemaStruct(schema)(body.value).pipe(Effect.orElse(() => absent(schema))))
    }
    if (Number(length) > maxBodyBytes) return Effect.fail(bodyTooLarge)
    return HttpServerRequest.schemaBodyUrlParams(schema).pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(maxBodyBytes)),
      Effect.catchAll((error) => overflowed(error) ? Effect.fail(bodyTooLarge) : absent(schema))
    )
  })

/** The query string, decoded by `schema` (whose fields are all {@link field}s). @internal */
export const readQuery = <A, I extends Fields>(
  schema: Schema.Schema<A, I>
): Effect.Effect<A, never, HttpServerRequest.ParsedSearchParams> =>
  HttpServerRequest.schemaSearchParams(schema).pipe(Effect.orElse(() => absent(schema)))

const hostPattern = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/

/** `scheme://host[:port]` as the client addressed the emulator (its `Host` header, when it is a host name). @internal */
export const baseUrl = (state: State): Effect.Effect<string, never, HttpServerRequest.HttpServerRequest> =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const host = request.headers["host"]
    return host !== undefined && hostPattern.test(host)
      ? `${state.baseUrl.slice(0, state.baseUrl.indexOf(":"))}://${host}`
      : state.baseUrl
  })

/** @internal */
export const json = (
  status: number,
  body: unknown,
  headers?: Readonly<Record<string, string>>
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(body, headers === undefined ? { status } : { status, headers })

/** @internal */
export const text = (
  status: number,
  body: string,
  contentType = "text/plain; charset=utf-8"
): HttpServerResponse.HttpServerResponse => HttpServerResponse.text(body, { status, contentType })

/** @internal */
export const redirect = (location: string): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.empty({ status: 302, headers: { location } })

/** An Entra-shaped error response; the correlation id echoes the client's `client-request-id`. @internal */
export const entraResponse = (
  state: State,
  e: EntraError
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const body = yield* entraErrorBody(e, {
      correlationId: request.headers["client-request-id"],
      baseUrl: yield* baseUrl(state)
    })
    return json(e.status, body)
  })

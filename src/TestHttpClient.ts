/**
 * A recording mock `HttpClient` for your own tests: answer each request with a function (or from a queue of
 * answers), read back every request sent — method, URL, headers, body, form fields — and never touch the network.
 *
 * It answers with web `Response`s, so anything you can describe with `fetch`'s types is a valid answer;
 * {@link json}, {@link text} and {@link tokenResponse} build the usual ones and {@link connectionReset} makes the
 * request fail as a reset connection would.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { TestHttpClient } from "effect-azure-identity"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* HttpClient.HttpClient
 *   const response = yield* client.get("https://vault.example.test/secrets/db?api-version=7.5")
 *   const requests = yield* TestHttpClient.requests
 *   return { status: response.status, sent: requests.map((r) => `${r.method} ${r.url.pathname}`) }
 * }).pipe(
 *   Effect.provide(TestHttpClient.layer((request) =>
 *     request.url.pathname === "/secrets/db" ? TestHttpClient.json(200, { value: "s3cret" }) : TestHttpClient.json(404, {})
 *   ))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * A request the client received. `body` is the text of a byte body (`<Stream body>` / `<FormData body>` for
 * others); `form` holds the fields of an `application/x-www-form-urlencoded` body.
 *
 * @since 0.1.0
 * @category models
 */
export interface Recorded {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly form: Readonly<Record<string, string>>
}

/**
 * What a handler answers: a web `Response`, or {@link connectionReset} to fail the request as a network error.
 *
 * @since 0.1.0
 * @category models
 */
export type Answer = Response | { readonly _tag: "reset" }

/**
 * Fails the request with a transport error (`ECONNRESET`), as a dropped connection would.
 *
 * @since 0.1.0
 * @category answers
 */
export const connectionReset: Answer = { _tag: "reset" }

/**
 * A JSON answer.
 *
 * @since 0.1.0
 * @category answers
 */
export const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

/**
 * A text answer (`text/html` unless said otherwise).
 *
 * @since 0.1.0
 * @category answers
 */
export const text = (status: number, body: string, contentType = "text/html"): Response =>
  new Response(body, { status, headers: { "content-type": contentType } })

/**
 * The body of a Microsoft Entra token answer.
 *
 * @since 0.1.0
 * @category answers
 */
export const tokenBody = (token = "access-token-1", expiresIn: number | string = 3600, extra: object = {}) => ({
  token_type: "Bearer",
  expires_in: expiresIn,
  ext_expires_in: expiresIn,
  access_token: token,
  ...extra
})

/**
 * An HTTP 200 Microsoft Entra token answer.
 *
 * @since 0.1.0
 * @category answers
 */
export const tokenResponse = (token = "access-token-1", expiresInSeconds = 3600): Response =>
  json(200, tokenBody(token, expiresInSeconds))

/**
 * How the client answers: a function of the request and its index (0 for the first), or a queue of answers used in
 * order (a request beyond the queue is a defect that names it).
 *
 * @since 0.1.0
 * @category models
 */
export type Handler =
  | ((request: Recorded, index: number) => Answer | Effect.Effect<Answer>)
  | ReadonlyArray<Answer | (() => Answer)>

/**
 * The recorder of a test client.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Every request received so far, in order. */
  readonly requests: Effect.Effect<ReadonlyArray<Recorded>>
  /** Forgets the requests received so far. */
  readonly clear: Effect.Effect<void>
}

/**
 * The recorder of a test client: read the requests sent, or forget them. Provided beside `HttpClient` by `layer` (and
 * by the `layer` of {@link unsafeMake}'s result).
 *
 * @since 0.1.0
 * @category tags
 */
export class TestHttpClient extends Context.Tag("effect-azure-identity/TestHttpClient")<TestHttpClient, Service>() {}

/**
 * A test client built outside Effect: `requests` is the live array of requests received.
 *
 * @since 0.1.0
 * @category models
 */
export interface Unsafe {
  readonly requests: Array<Recorded>
  readonly client: HttpClient.HttpClient
  /** Provides `HttpClient` and {@link TestHttpClient}. */
  readonly layer: Layer.Layer<HttpClient.HttpClient | TestHttpClient>
}

const bodyText = (request: HttpClientRequest.HttpClientRequest): string => {
  const body = request.body
  if (body._tag === "Uint8Array") return new TextDecoder().decode(body.body)
  if (body._tag === "Empty") return ""
  return `<${body._tag} body>`
}

const toHandler = (handler: Handler): (request: Recorded, index: number) => Answer | Effect.Effect<Answer> => {
  if (typeof handler === "function") return handler
  const queue = handler
  return (request, index) => {
    const answer = queue[index]
    if (answer === undefined) {
      return Effect.dieMessage(
        `TestHttpClient: request ${index + 1} (${request.method} ${request.url.href}) is beyond the ${queue.length} ` +
          `answers queued`
      )
    }
    return typeof answer === "function" ? answer() : answer
  }
}

/**
 * A recording client answering with `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake = (handler: Handler): Unsafe => {
  const answer = toHandler(handler)
  const requests: Array<Recorded> = []
  const client = HttpClient.make((request, url) =>
    Effect.suspend(() => {
      const body = bodyText(request)
      const recorded: Recorded = {
        method: request.method,
        url,
        headers: { ...request.headers },
        body,
        form: request.headers["content-type"]?.startsWith("application/x-www-form-urlencoded")
          ? Object.fromEntries(new URLSearchParams(body))
          : {}
      }
      const index = requests.length
      requests.push(recorded)
      const result = answer(recorded, index)
      return Effect.flatMap(Effect.isEffect(result) ? result : Effect.succeed(result), (a) =>
        a instanceof Response
          ? Effect.succeed(HttpClientResponse.fromWeb(request, a))
          : Effect.fail(
            new HttpClientError.RequestError({
              request,
              reason: "Transport",
              cause: Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })
            })
          ))
    })
  )
  const service: Service = {
    requests: Effect.sync(() => requests.slice()),
    clear: Effect.sync(() => {
      requests.length = 0
    })
  }
  return {
    requests,
    client,
    layer: Layer.merge(Layer.succeed(HttpClient.HttpClient, client), Layer.succeed(TestHttpClient, service))
  }
}

/**
 * A fresh recording client for each build of the layer: provides `HttpClient` and {@link TestHttpClient}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (handler: Handler): Layer.Layer<HttpClient.HttpClient | TestHttpClient> =>
  Layer.unwrapEffect(Effect.sync(() => unsafeMake(handler).layer))

/**
 * The requests received by the {@link TestHttpClient} in the context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const requests: Effect.Effect<ReadonlyArray<Recorded>, never, TestHttpClient> = Effect.flatMap(
  TestHttpClient,
  (service) => service.requests
)

/**
 * A client for tests where no request may be sent: any request is a defect naming it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerUnreachable: Layer.Layer<HttpClient.HttpClient> = Layer.succeed(
  HttpClient.HttpClient,
  HttpClient.make((request) => Effect.dieMessage(`unexpected HTTP request: ${request.method} ${request.url}`))
)

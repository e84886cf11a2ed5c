/**
 * The token requests' transport on Node: an `HttpClient` that sends a request with undici's `Dispatcher.request`
 * and nothing else — no `http.client` span, no header redaction work, no `AbortController` per request, no fiber
 * to read the body. `effect-azure-identity/node` builds it on the same undici `Agent` (the same keep-alive
 * connections) as the `HttpClient` it provides, and attaches it to that client (see `http.ts`, `tokenTransport`):
 * credentials use it only when the `HttpClient` they are given is that very client. Any other client (a test's
 * mock, a client with a proxy, the Node client wrapped by the application) is used as given.
 *
 * What it does like `NodeHttpClient.makeUndici`: the same request (method, headers, URL with its parameters and
 * hash, body), the same undici options (`UndiciRequestOptions` in the context, timeouts left to Effect), the same
 * `RequestError` / `ResponseError` values, interruption aborts the request or stops the body, and a response whose
 * body is never read releases its connection when it is garbage-collected.
 *
 * @internal
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeStream from "@effect/platform-node/NodeStream"
import type * as Undici from "@effect/platform-node/Undici"
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type * as Http from "./http.js"

type UndiciResponse = Undici.Dispatcher.ResponseData

/** An unread body is dropped (its connection released) once its response is garbage-collected. */
const unread = new FinalizationRegistry<UndiciResponse["body"]>((body) => {
  body.destroy()
})

const decoder = new TextDecoder()

class Response extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  private cachedHeaders: Headers.Headers | undefined
  private cachedCookies: Cookies.Cookies | undefined
  private bytes: Promise<ArrayBuffer> | undefined

  constructor(readonly request: HttpClientRequest.HttpClientRequest, readonly source: UndiciResponse) {
    super()
    source.body.on("error", noop)
    unread.register(this, source.body, this)
  }

  get status(): number {
    return this.source.statusCode
  }

  get headers(): Headers.Headers {
    return this.cachedHeaders ??= Headers.fromInput(this.source.headers)
  }

  get cookies(): Cookies.Cookies {
    if (this.cachedCookies !== undefined) return this.cachedCookies
    const header = this.source.headers["set-cookie"]
    return this.cachedCookies = header === undefined
      ? Cookies.empty
      : Cookies.fromSetCookie(Array.isArray(header) ? header : [header])
  }

  get remoteAddress(): Option.Option<string> {
    return Option.none()
  }

  private decodeError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }

  /** Reads the body once; interrupting the reader stops the body (and its connection). */
  private read<A>(f: (body: UndiciResponse["body"]) => Promise<A>): Effect.Effect<A, HttpClientError.ResponseError> {
    return Effect.async<A, HttpClientError.ResponseError>((resume) => {
      unread.unregister(this)
      f(this.source.body).then(
        (value) => resume(Effect.succeed(value)),
        (cause) => resume(Effect.fail(this.decodeError(cause)))
      )
      return Effect.sync(() => this.source.body.destroy())
    })
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.suspend(() => this.read(() => this.bytes ??= this.source.body.arrayBuffer()))
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.map(this.arrayBuffer, (bytes) => decoder.decode(bytes))
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: () => text === "" ? null : JSON.parse(text) as unknown,
        catch: (cause) => this.decodeError(cause)
      }))
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: () => UrlParams.fromInput(new URLSearchParams(text)),
        catch: (cause) => this.decodeError(cause)
      }))
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.suspend(() => this.read((body) => body.formData() as Promise<FormData>))
  }

  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    unread.unregister(this)
    return NodeStream.fromReadable<HttpClientError.ResponseError, Uint8Array>(
      () => this.source.body,
      (cause) => this.decodeError(cause)
    )
  }

  toJSON(): unknown {
    return HttpIncomingMessage.inspect(this, {
      _id: "@effect/platform/HttpClientResponse",
      request: this.request.toJSON(),
      status: this.status
    })
  }
}

const noop = () => {}

type Body = NonNullable<Undici.Dispatcher.DispatchOptions["body"]> | null

const send = (
  dispatcher: Undici.Dispatcher,
  request: HttpClientRequest.HttpClientRequest,
  url: URL,
  body: Body,
  options: Partial<Undici.Dispatcher.RequestOptions> | undefined
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError> =>
  Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((resume, signal) => {
    dispatcher.request({
      ...options,
      signal,
      method: request.method,
      headers: request.headers,
      origin: url.origin,
      path: url.pathname + url.search + url.hash,
      body,
      // timeouts are Effect's (the attempt timeout)
      headersTimeout: 60 * 60 * 1000,
      bodyTimeout: 0
    }).then(
      (response) => resume(Effect.succeed(new Response(request, response))),
      (cause) => resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause })))
    )
  })

/**
 * The lean client on `dispatcher`.
 *
 * @internal
 */
export const make = (dispatcher: Undici.Dispatcher): HttpClient.HttpClient =>
  HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
    (effect) =>
      Effect.flatMap(effect, (request) => {
        const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
        if (url._tag === "Left") {
          return Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left }))
        }
        return Effect.contextWithEffect((
          context: Context.Context<never>
        ): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError> => {
          const options = Context.getOption(context, NodeHttpClient.UndiciRequestOptions)
          const given = Option.getOrUndefined(options)
          const body = request.body
          switch (body._tag) {
            case "Empty":
              return send(dispatcher, request, url.right, null, given)
            case "Uint8Array":
            case "Raw":
              return send(dispatcher, request, url.right, body.body as Body, given)
            case "FormData":
              return send(dispatcher, request, url.right, body.formData as never, given)
            case "Stream":
              return Effect.flatMap(
                NodeStream.toReadable(body.stream),
                (readable) => send(dispatcher, request, url.right, readable, given)
              )
          }
        })
      }),
    Effect.succeed
  )

const textDecoder = new TextDecoder()

/**
 * One exchange's undici handler: collects the body (at most `limit` bytes) and reports once. An abort before undici
 * has started the request is remembered and applied when it does.
 */
class ExchangeHandler implements Undici.Dispatcher.DispatchHandler {
  private controller: Undici.Dispatcher.DispatchController | undefined
  private aborted = false
  private finished = false
  private status = 0
  private headers: Record<string, string> = {}
  private readonly chunks: Array<Buffer> = []
  private size = 0

  constructor(private readonly limit: number, private readonly done: (result: Http.ExchangeResult) => void) {}

  private finish(result: Http.ExchangeResult) {
    if (this.finished) return
    this.finished = true
    this.done(result)
  }

  /** Stops the request (or the body being read); no result is reported after this. */
  abort(): void {
    this.finished = true
    if (this.aborted) return
    this.aborted = true
    this.controller?.abort(new Error("the request was aborted"))
  }

  private tooLarge() {
    this.finish({ _tag: "TooLarge", status: this.status })
    this.abort()
  }

  onRequestStart(controller: Undici.Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.aborted) controller.abort(new Error("the request was aborted"))
  }

  onResponseStart(
    _controller: Undici.Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | Array<string> | undefined>
  ): void {
    if (statusCode < 200) return // an informational answer: the real one follows
    this.status = statusCode
    const out: Record<string, string> = {}
    for (const name in headers) {
      const value = headers[name]
      if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value
    }
    this.headers = out
    const declared = out["content-length"]
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > this.limit) this.tooLarge()
  }

  onResponseData(_controller: Undici.Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.finished) return
    this.size += chunk.length
    if (this.size > this.limit) return this.tooLarge()
    this.chunks.push(chunk)
  }

  onResponseEnd(): void {
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size)
    this.finish({ _tag: "Response", status: this.status, headers: this.headers, text: textDecoder.decode(body) })
  }

  onResponseError(_controller: Undici.Dispatcher.DispatchController, error: Error): void {
    this.finish({ _tag: "Failed", cause: error })
  }
}

/**
 * The direct exchange on `dispatcher` (see `Http.Exchange`): one undici `dispatch` with a handler that collects the
 * body — no response object, no body stream, no `AbortController`. Not in a context that holds
 * `UndiciRequestOptions` (those requests go through the client, which applies them).
 *
 * @internal
 */
export const makeExchange = (dispatcher: Undici.Dispatcher): Http.Exchange => ({
  accepts: (context) => !context.unsafeMap.has(NodeHttpClient.UndiciRequestOptions.key),
  send: (request, limit, done) => {
    const handler = new ExchangeHandler(limit, done)
    dispatcher.dispatch({
      method: request.method as Undici.Dispatcher.HttpMethod,
      origin: request.origin,
      path: request.path,
      headers: request.headers,
      body: request.body,
      // timeouts are the attempt's own
      headersTimeout: 60 * 60 * 1000,
      bodyTimeout: 0
    }, handler)
    return () => handler.abort()
  }
})

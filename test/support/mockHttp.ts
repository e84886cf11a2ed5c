/**
 * A mock `HttpClient` that records every request and answers from a handler, plus a client that dies if called.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export interface Recorded {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly form: Readonly<Record<string, string>>
}

export type Answer = Response | { readonly _tag: "reset" }

export const reset: Answer = { _tag: "reset" }

export const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

export const text = (status: number, body: string, contentType = "text/html"): Response =>
  new Response(body, { status, headers: { "content-type": contentType } })

export const tokenBody = (token = "access-token-1", expiresIn: number | string = 3600, extra: object = {}) => ({
  token_type: "Bearer",
  expires_in: expiresIn,
  ext_expires_in: expiresIn,
  access_token: token,
  ...extra
})

const bodyText = (request: HttpClientRequest.HttpClientRequest): string => {
  const body = request.body
  if (body._tag === "Uint8Array") return new TextDecoder().decode(body.body)
  if (body._tag === "Empty") return ""
  return `<${body._tag} body>`
}

export interface MockHttp {
  readonly requests: Array<Recorded>
  readonly layer: Layer.Layer<HttpClient.HttpClient>
  readonly client: HttpClient.HttpClient
}

/** Answers each request with `handler(request, index)`; records the requests in order. */
export const mockHttp = (
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>
): MockHttp => {
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
      const answer = handler(recorded, index)
      return Effect.flatMap(Effect.isEffect(answer) ? answer : Effect.succeed(answer), (a) =>
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
  return { requests, client, layer: Layer.succeed(HttpClient.HttpClient, client) }
}

/** A client for tests where no network may be touched: any request is a defect. */
export const dieHttp: Layer.Layer<HttpClient.HttpClient> = Layer.succeed(
  HttpClient.HttpClient,
  HttpClient.make((request) => Effect.dieMessage(`unexpected HTTP request: ${request.method} ${request.url}`))
)

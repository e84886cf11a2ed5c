/**
 * What a route answers, independent of the HTTP server: the server turns it into a response and applies faults.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { EntraError } from "./responses.js"
import { entraErrorBody } from "./responses.js"

/** @internal */
export interface Reply {
  readonly status: number
  readonly body: { readonly _tag: "Json"; readonly value: unknown } | {
    readonly _tag: "Text"
    readonly value: string
    readonly contentType: string
  } | { readonly _tag: "Empty" }
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** A request as the routes see it: headers lower-cased, query and form parsed (an unreadable body is empty). @internal */
export interface Incoming {
  readonly method: string
  readonly path: string
  readonly params: Readonly<Record<string, string | undefined>>
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly query: URLSearchParams
  readonly form: URLSearchParams
  /** `scheme://host[:port]` as the client addressed the emulator. */
  readonly baseUrl: string
}

/** @internal */
export const jsonReply = (status: number, value: unknown, headers?: Record<string, string>): Reply => ({
  status,
  body: { _tag: "Json", value },
  headers
})

/** @internal */
export const textReply = (status: number, value: string, contentType = "text/plain; charset=utf-8"): Reply => ({
  status,
  body: { _tag: "Text", value, contentType }
})

/** @internal */
export const redirectReply = (location: string): Reply => ({
  status: 302,
  body: { _tag: "Empty" },
  headers: { location }
})

/** An Entra-shaped error reply. @internal */
export const entraReply = (incoming: Incoming, e: EntraError): Effect.Effect<Reply> =>
  Effect.map(
    entraErrorBody(e, { correlationId: incoming.headers["client-request-id"], baseUrl: incoming.baseUrl }),
    (body) => jsonReply(e.status, body)
  )

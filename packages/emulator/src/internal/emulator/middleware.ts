/**
 * What wraps every route, as `HttpMiddleware`: injected faults (status, `Retry-After`, delay, malformed body), the
 * request log, `Cache-Control: no-store`, and a 500 for a defect (no input should cause one).
 *
 * @internal
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { baseUrl, entraResponse, json } from "./http.js"
import { entraError } from "./responses.js"
import type { State } from "./state.js"
import { takeFault } from "./state.js"

/** Every route of the emulator, by the name faults and the request log use. @internal */
export const routes = [
  "token",
  "devicecode",
  "authorize",
  "devicelogin",
  "openid",
  "keys",
  "imds",
  "appService2019",
  "appService2017",
  "cloudShell",
  "arc",
  "pipelines"
] as const

/** @internal */
export type RouteName = typeof routes[number]

const entraRoutes: ReadonlySet<RouteName> = new Set(["token", "devicecode", "authorize", "openid", "keys"])

const faultResponse = (state: State, route: RouteName, status: number) =>
  entraRoutes.has(route)
    ? entraResponse(
      state,
      status === 429
        ? entraError(429, "temporarily_unavailable", 50196, "The server is throttling this client (injected fault).")
        : entraError(
          status,
          status >= 500 ? "server_error" : "invalid_request",
          90033,
          `Injected fault: HTTP ${status}.`
        )
    )
    : Effect.succeed(json(status, {
      error: status >= 500 ? "server_error" : "invalid_request",
      error_description: `Injected fault: HTTP ${status}`
    }))

const malformed = (response: HttpServerResponse.HttpServerResponse) =>
  HttpServerResponse.text("{\"access_token\": \"eyJ0eXAiOiJKV1Qi", {
    status: response.status,
    contentType: "application/json; charset=utf-8",
    headers: response.headers
  })

/**
 * The fault registered for `route`, if any, taken once per request: waits its delay (through `Clock`), answers its
 * status instead of the route, adds its `Retry-After`, breaks the body.
 *
 * @internal
 */
export const faults = (state: State, route: RouteName) =>
  HttpMiddleware.make(<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.gen(function*() {
      const fault = takeFault(state, route)
      if (fault === undefined) return yield* app
      if (fault.delayMillis !== undefined && fault.delayMillis > 0) yield* Effect.sleep(fault.delayMillis)
      const response = fault.status !== undefined ? yield* faultResponse(state, route, fault.status) : yield* app
      const withRetryAfter = fault.retryAfterSeconds !== undefined
        ? HttpServerResponse.setHeader(response, "retry-after", String(fault.retryAfterSeconds))
        : response
      return fault.malformedBody === true ? malformed(withRetryAfter) : withRetryAfter
    })
  )

/**
 * Records each answered request in the log: route, method, path (never the query, headers or body), status, time.
 *
 * @internal
 */
export const requestLog = (state: State, route: RouteName) =>
  HttpMiddleware.make(<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.gen(function*() {
      const response = yield* app
      const request = yield* HttpServerRequest.HttpServerRequest
      const base = yield* baseUrl(state)
      state.log.push({
        route,
        method: request.method,
        path: URL.canParse(request.url, base) ? new URL(request.url, base).pathname : new URL(base).pathname,
        status: response.status,
        atMillis: yield* Clock.currentTimeMillis
      })
      return response
    })
  )

/** `Cache-Control: no-store, no-cache` on every answer, as Entra and the managed-identity hosts send. @internal */
export const noStore = HttpMiddleware.make(<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.map(app, (response) => HttpServerResponse.setHeader(response, "cache-control", "no-store, no-cache"))
)

/** A defect is a JSON 500, never a dropped connection. @internal */
export const internalError = HttpMiddleware.make(<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
  Effect.catchAllCause(app, () =>
    Effect.succeed(
      json(500, { error: "server_error", error_description: "The emulator failed internally." })
    ))
)

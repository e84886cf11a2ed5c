/**
 * The emulator's HTTP app: routes, request parsing, fault injection and the request log.
 *
 * @internal
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Entra from "./entra.js"
import * as ManagedIdentity from "./managedIdentity.js"
import type { Incoming, Reply } from "./reply.js"
import { entraReply, jsonReply } from "./reply.js"
import { entraError } from "./responses.js"
import * as SignIn from "./signIn.js"
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
  "arc"
] as const

/** @internal */
export type RouteName = typeof routes[number]

const entraRoutes: ReadonlySet<RouteName> = new Set(["token", "devicecode", "authorize", "openid", "keys"])

/** Paths, relative to the base URL. @internal */
export const paths = {
  imds: "/metadata/identity/oauth2/token",
  appService2019: "/msi/token",
  /** GET: App Service 2017; POST: Cloud Shell (both read `MSI_ENDPOINT`). */
  msiLegacy: "/oauth2/token",
  arcBase: "/arc",
  devicelogin: "/devicelogin"
} as const

const hostPattern = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/

const isForm = (contentType: string | undefined) =>
  contentType !== undefined && contentType.toLowerCase().startsWith("application/x-www-form-urlencoded")

const readIncoming = (state: State, scheme: string) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const params = yield* HttpRouter.params
    const headers = request.headers
    const host = headers["host"]
    const baseUrl = host !== undefined && hostPattern.test(host) ? `${scheme}://${host}` : state.baseUrl
    let url: URL
    try {
      url = new URL(request.url, baseUrl)
    } catch {
      url = new URL(baseUrl)
    }
    const text = request.method === "POST" && isForm(headers["content-type"])
      ? yield* request.text.pipe(
        HttpIncomingMessage.withMaxBodySize(Option.some(1024 * 1024)),
        Effect.orElseSucceed(() => "")
      )
      : ""
    let form: URLSearchParams
    try {
      form = new URLSearchParams(text)
    } catch {
      form = new URLSearchParams()
    }
    const incoming: Incoming = {
      method: request.method,
      path: url.pathname,
      params,
      headers,
      query: url.searchParams,
      form,
      baseUrl
    }
    return incoming
  })

const faultReply = (route: RouteName, incoming: Incoming, status: number): Effect.Effect<Reply> => {
  if (entraRoutes.has(route)) {
    return entraReply(
      incoming,
      status === 429
        ? entraError(429, "temporarily_unavailable", 50196, "The server is throttling this client (injected fault).")
        : entraError(
          status,
          status >= 500 ? "server_error" : "invalid_request",
          90033,
          `Injected fault: HTTP ${status}.`
        )
    )
  }
  return Effect.succeed(
    jsonReply(status, {
      error: status >= 500 ? "server_error" : "invalid_request",
      error_description: `Injected fault: HTTP ${status}`
    })
  )
}

const toResponse = (reply: Reply, malformed: boolean): HttpServerResponse.HttpServerResponse => {
  const headers = { "cache-control": "no-store, no-cache", ...reply.headers }
  if (malformed) {
    return HttpServerResponse.text("{\"access_token\": \"eyJ0eXAiOiJKV1Qi", {
      status: reply.status,
      contentType: "application/json; charset=utf-8",
      headers
    })
  }
  switch (reply.body._tag) {
    case "Json":
      return HttpServerResponse.unsafeJson(reply.body.value, { status: reply.status, headers })
    case "Text":
      return HttpServerResponse.text(reply.body.value, {
        status: reply.status,
        contentType: reply.body.contentType,
        headers
      })
    case "Empty":
      return HttpServerResponse.empty({ status: reply.status, headers })
  }
}

const handle = (
  state: State,
  scheme: string,
  route: RouteName | ((incoming: Incoming) => RouteName),
  handler: (state: State, incoming: Incoming) => Effect.Effect<Reply>
) =>
  Effect.gen(function*() {
    const incoming = yield* readIncoming(state, scheme)
    const name = typeof route === "string" ? route : route(incoming)
    const fault = takeFault(state, name)
    if (fault?.delayMillis !== undefined && fault.delayMillis > 0) yield* Effect.sleep(fault.delayMillis)
    const reply = fault?.status !== undefined
      ? yield* faultReply(name, incoming, fault.status)
      : yield* handler(state, incoming)
    const withRetryAfter: Reply = fault?.retryAfterSeconds !== undefined
      ? { ...reply, headers: { ...reply.headers, "retry-after": String(fault.retryAfterSeconds) } }
      : reply
    state.log.push({
      route: name,
      method: incoming.method,
      path: incoming.path,
      status: withRetryAfter.status,
      atMillis: yield* Clock.currentTimeMillis
    })
    return toResponse(withRetryAfter, fault?.malformedBody === true)
  }).pipe(
    Effect.catchAllCause(() =>
      Effect.succeed(
        HttpServerResponse.unsafeJson({ error: "server_error", error_description: "The emulator failed internally." }, {
          status: 500
        })
      )
    )
  )

/** Entra's token and device-code endpoints take POST only; other methods get Entra's AADSTS900561. */
const postOnly =
  (handler: (state: State, incoming: Incoming) => Effect.Effect<Reply>) =>
  (state: State, incoming: Incoming): Effect.Effect<Reply> =>
    incoming.method === "POST" ? handler(state, incoming) : entraReply(
      incoming,
      entraError(
        400,
        "invalid_request",
        900561,
        `The endpoint only accepts POST, OPTIONS requests. Received a ${incoming.method.slice(0, 16)} request.`
      )
    )

/** The emulator's router. @internal */
export const router = (state: State, scheme: "http" | "https") => {
  const h = (
    route: RouteName | ((incoming: Incoming) => RouteName),
    handler: (state: State, incoming: Incoming) => Effect.Effect<Reply>
  ) => handle(state, scheme, route, handler)
  const msiLegacy = (s: State, i: Incoming) =>
    i.method === "POST" ? ManagedIdentity.cloudShell(s, i) : ManagedIdentity.appService2017(s, i)
  return HttpRouter.empty.pipe(
    HttpRouter.all("/:tenant/oauth2/v2.0/token", h("token", postOnly(Entra.token))),
    HttpRouter.all("/:tenant/oauth2/v2.0/devicecode", h("devicecode", postOnly(Entra.deviceAuthorization))),
    HttpRouter.all("/:tenant/oauth2/v2.0/authorize", h("authorize", SignIn.authorize)),
    HttpRouter.get("/:tenant/v2.0/.well-known/openid-configuration", h("openid", Entra.openidConfiguration)),
    HttpRouter.get("/:tenant/discovery/v2.0/keys", h("keys", (s) => Entra.keys(s))),
    HttpRouter.get(paths.devicelogin, h("devicelogin", Entra.deviceLogin)),
    HttpRouter.post(paths.devicelogin, h("devicelogin", Entra.deviceLogin)),
    HttpRouter.all(paths.imds, h("imds", ManagedIdentity.imds)),
    HttpRouter.all(paths.appService2019, h("appService2019", ManagedIdentity.appService2019)),
    HttpRouter.get(paths.msiLegacy, h("appService2017", msiLegacy)),
    HttpRouter.post(paths.msiLegacy, h("cloudShell", msiLegacy)),
    HttpRouter.all(`${paths.arcBase}${paths.imds}`, h("arc", ManagedIdentity.arc))
  )
}

/**
 * The emulator's HTTP app: the router, and a JSON 404 for a request no route matches (the router alone would answer
 * an empty 404).
 *
 * @internal
 */
export const app = (state: State, scheme: "http" | "https") =>
  Effect.map(
    HttpRouter.toHttpApp(router(state, scheme)),
    Effect.catchTag("RouteNotFound", () =>
      Effect.succeed(
        HttpServerResponse.unsafeJson({ error: "not_found", error_description: "The emulator has no such route." }, {
          status: 404
        })
      ))
  )

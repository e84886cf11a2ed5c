/**
 * The emulator's HTTP app: an `HttpRouter` of the Entra and managed-identity routes, each wrapped in the
 * middleware that injects faults and logs requests, and a JSON 404 for a request no route matches.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as DeviceCode from "./entra/deviceCode.js"
import * as Discovery from "./entra/discovery.js"
import * as Token from "./entra/token.js"
import { json } from "./http.js"
import * as ManagedIdentity from "./managedIdentity.js"
import type { RouteName } from "./middleware.js"
import { faults, internalError, noStore, requestLog } from "./middleware.js"
import * as Pipelines from "./pipelines.js"
import * as SignIn from "./signIn.js"
import type { State } from "./state.js"

export type { RouteName } from "./middleware.js"
export { routes } from "./middleware.js"

/** Paths, relative to the base URL. @internal */
export const paths = {
  imds: "/metadata/identity/oauth2/token",
  appService2019: "/msi/token",
  /** GET: App Service 2017; POST: Cloud Shell (both read `MSI_ENDPOINT`). */
  msiLegacy: "/oauth2/token",
  arcBase: "/arc",
  devicelogin: "/devicelogin"
} as const

/** The router, every route wrapped in its middleware. @internal */
export const router = (state: State) => {
  const route = (name: RouteName) => flow(faults(state, name), requestLog(state, name), noStore, internalError)
  const handler = <R>(name: RouteName, effect: Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>) =>
    route(name)(effect)
  const msiLegacy = Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) => request.method === "POST" ? ManagedIdentity.cloudShell(state) : ManagedIdentity.appService2017(state)
  )
  return HttpRouter.empty.pipe(
    HttpRouter.all("/:tenant/oauth2/v2.0/token", handler("token", Token.postOnly(state, Token.token(state)))),
    HttpRouter.all(
      "/:tenant/oauth2/v2.0/devicecode",
      handler("devicecode", Token.postOnly(state, DeviceCode.deviceAuthorization(state)))
    ),
    HttpRouter.all("/:tenant/oauth2/v2.0/authorize", handler("authorize", SignIn.authorize(state))),
    HttpRouter.get(
      "/:tenant/v2.0/.well-known/openid-configuration",
      handler("openid", Discovery.openidConfiguration(state))
    ),
    HttpRouter.get("/:tenant/discovery/v2.0/keys", handler("keys", Discovery.keys(state))),
    HttpRouter.get(paths.devicelogin, handler("devicelogin", DeviceCode.deviceLogin(state))),
    HttpRouter.post(paths.devicelogin, handler("devicelogin", DeviceCode.deviceLogin(state))),
    HttpRouter.all(paths.imds, handler("imds", ManagedIdentity.imds(state))),
    HttpRouter.all(paths.appService2019, handler("appService2019", ManagedIdentity.appService2019(state))),
    HttpRouter.get(paths.msiLegacy, handler("appService2017", msiLegacy)),
    HttpRouter.post(paths.msiLegacy, handler("cloudShell", msiLegacy)),
    HttpRouter.all(`${paths.arcBase}${paths.imds}`, handler("arc", ManagedIdentity.arc(state))),
    HttpRouter.all(Pipelines.path, handler("pipelines", Pipelines.oidcToken(state)))
  )
}

/**
 * The emulator's HTTP app: the router, and a JSON 404 for a request no route matches (the router alone would answer
 * an empty 404).
 *
 * @internal
 */
export const app = (state: State) =>
  HttpRouter.toHttpApp(router(state)).pipe(
    Effect.map(Effect.catchTag("RouteNotFound", () =>
      Effect.succeed(json(404, { error: "not_found", error_description: "The emulator has no such route." }))))
  )

/**
 * Request headers that carry a secret, kept out of the `http.server` spans (`Redacted` there) besides
 * `@effect/platform`'s defaults (`authorization`, `cookie`, `set-cookie`, `x-api-key`): App Service's
 * `X-IDENTITY-HEADER` and `secret`, Azure Arc's `Authorization: Basic <key>`. `Metadata: true` is no secret and
 * stays readable. The response's `location` is redacted too: after `/authorize` it carries an authorization code.
 *
 * @internal
 */
export const redactedHeaderNames: ReadonlyArray<string> = ["authorization", "x-identity-header", "secret", "location"]

/** Serves the emulator's app on `server`, secrets redacted from its spans, until the scope closes. @internal */
export const serve = (server: HttpServer.HttpServer, state: State) =>
  Effect.flatMap(app(state), (httpApp) =>
    server.serve(httpApp).pipe(
      Effect.locallyWith(Headers.currentRedactedNames, (names) => [...names, ...redactedHeaderNames])
    ))

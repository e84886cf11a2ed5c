/**
 * The loopback listener `InteractiveBrowserCredential` receives its redirect on: a service, so programs and tests can
 * give their own and the library itself never imports `node:http`. `effect-azure-identity/node` provides the Node
 * implementation (`layerLoopbackServer`, part of `IdentityNode.layer`).
 *
 * @since 0.1.0
 */
import type * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * What a {@link LoopbackServer} does: start an HTTP server on the loopback interface, where
 * `InteractiveBrowserCredential` receives the sign-in redirect.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoopbackServerService {
  /** An HTTP server listening on `127.0.0.1:{port}` (`0`: a free port) until the scope closes. */
  readonly listen: (options: {
    readonly port: number
  }) => Effect.Effect<HttpServer.HttpServer, HttpServerError.ServeError, Scope.Scope>
}

/**
 * Starts the redirect listener. `effect-azure-identity/node` provides the Node implementation (`node:http`).
 *
 * @since 0.1.0
 * @category tags
 */
export class LoopbackServer extends Context.Tag("effect-azure-identity/InteractiveBrowserCredential/LoopbackServer")<
  LoopbackServer,
  LoopbackServerService
>() {}

/**
 * The Node.js implementations of the services credentials use: `HttpClient` (undici), `FileSystem`, `Path`,
 * `CommandExecutor`, `PinnedHttpClient` (the certificate-pinned client of Service Fabric's managed identity
 * endpoint) and `LoopbackServer.LoopbackServer` (the browser sign-in's redirect listener). Provide it
 * once at the edge of a Node program:
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { DefaultAzureCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = DefaultAzureCredential.layer().pipe(Layer.provide(IdentityNode.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Undici from "@effect/platform-node/Undici"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Http from "node:http"
import type * as Tls from "node:tls"
import * as IdentityHttp from "./internal/http.js"
import * as NodeTransport from "./internal/nodeTransport.js"
import * as LoopbackServer from "./LoopbackServer.js"
import * as PinnedHttpClient from "./PinnedHttpClient.js"

const pinMismatch = (message: string): Error =>
  Object.assign(new Error(message), { code: PinnedHttpClient.thumbprintMismatchCode })

/**
 * An undici connector that completes the TLS handshake without CA validation, then accepts the connection only if
 * the server's certificate has the pinned thumbprint — before undici writes a byte of the request. TLS sessions are
 * not resumed, so every connection presents its certificate.
 */
const pinnedConnector = (pin: PinnedHttpClient.Thumbprint): Undici.buildConnector.connector => {
  const connect = Undici.buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 })
  return (options, callback) => {
    if (options.protocol !== "https:") {
      callback(pinMismatch(`a certificate-pinned connection must use https:, not ${options.protocol}`), null)
      return
    }
    connect(options, (error, socket) => {
      if (error !== null || socket === null) {
        callback(error ?? new Error("connection failed"), null)
        return
      }
      const certificate = (socket as Tls.TLSSocket).getPeerCertificate?.()
      const presented = (pin.algorithm === "sha1" ? certificate?.fingerprint : certificate?.fingerprint256) ?? ""
      if (presented.replace(/:/g, "").toUpperCase() !== pin.hex) {
        socket.destroy()
        callback(
          pinMismatch(
            `the server certificate's ${pin.algorithm} thumbprint ${presented.replace(/:/g, "") || "(none)"} ` +
              `is not the pinned ${pin.hex}`
          ),
          null
        )
        return
      }
      callback(null, socket)
    })
  }
}

/**
 * The Node implementation of `PinnedHttpClient`: an undici client per thumbprint whose connections are accepted
 * only when the server's certificate has that thumbprint. Verification is never disabled for anything else.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPinnedHttpClient: Layer.Layer<PinnedHttpClient.PinnedHttpClient> = Layer.succeed(
  PinnedHttpClient.PinnedHttpClient,
  {
    make: (pin) =>
      Effect.map(
        Effect.acquireRelease(
          Effect.sync(() => new Undici.Agent({ connect: pinnedConnector(pin) })),
          (agent) => Effect.promise(() => agent.destroy())
        ),
        (agent): HttpClient.HttpClient => NodeHttpClient.makeUndici(agent)
      )
  }
)

/**
 * The Node implementation of `LoopbackServer.LoopbackServer`: a `node:http` server on `127.0.0.1`,
 * closed with its scope.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLoopbackServer: Layer.Layer<LoopbackServer.LoopbackServer> = Layer.succeed(
  LoopbackServer.LoopbackServer,
  {
    listen: ({ port }) => NodeHttpServer.make(() => Http.createServer(), { port, host: "127.0.0.1" })
  }
)

/**
 * The `HttpClient` of `@effect/platform-node` on undici (`NodeHttpClient.layerUndici`), with the library's lean
 * token transport on the same undici `Agent` attached: credentials given this very client send their token
 * requests through the lean transport (one keep-alive connection pool, no per-request span or body fiber); every
 * other use of the client is the platform's client, unchanged.
 */
const layerHttpClient: Layer.Layer<HttpClient.HttpClient> = Layer.effect(
  HttpClient.HttpClient,
  Effect.zipWith(
    HttpClient.HttpClient,
    NodeHttpClient.Dispatcher,
    (client, dispatcher) =>
      IdentityHttp.withTokenTransport(client, NodeTransport.make(dispatcher), NodeTransport.makeExchange(dispatcher))
  )
).pipe(Layer.provide(NodeHttpClient.layerUndiciWithoutDispatcher), Layer.provide(NodeHttpClient.dispatcherLayer))

/**
 * Every service the credentials need on Node.js, in one layer: `HttpClient` (undici), `FileSystem`, `Path`,
 * `CommandExecutor`, `PinnedHttpClient` and `LoopbackServer`. Provide it to your credential layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  | HttpClient.HttpClient
  | FileSystem.FileSystem
  | Path.Path
  | CommandExecutor.CommandExecutor
  | PinnedHttpClient.PinnedHttpClient
  | LoopbackServer.LoopbackServer
> = Layer.mergeAll(layerHttpClient, NodeContext.layer, layerPinnedHttpClient, layerLoopbackServer)

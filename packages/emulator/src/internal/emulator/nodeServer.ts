/**
 * The emulator's Node platform: an http or https server served through `@effect/platform-node`'s `NodeHttpServer`,
 * and Node's `FileSystem` and `Path`. The only module of the package that imports `node:http` / `node:https`.
 *
 * @internal
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodePath from "@effect/platform-node/NodePath"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpServer from "@effect/platform/HttpServer"
import type * as Path from "@effect/platform/Path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as http from "node:http"
import * as https from "node:https"

/** What the emulator needs from the platform besides the server. @internal */
export const platform: Layer.Layer<FileSystem.FileSystem | Path.Path> = Layer.merge(
  NodeFileSystem.layer,
  NodePath.layer
)

/** Why the server could not start: the TLS material does not load, or the address cannot be listened on. @internal */
export class StartError extends Data.TaggedError("StartError")<{
  readonly reason: "tls" | "listen"
  /** Node's description of the problem (never the key's text). */
  readonly detail: string
}> {}

const describe = (e: unknown) => e instanceof Error ? e.message : String(e)

/**
 * Listens on `host:port` (http, or https with the PEM certificate and key); the server stops, dropping keep-alive
 * connections, when the scope closes.
 *
 * @internal
 */
export const listen = (options: {
  readonly host: string
  readonly port: number
  readonly tls: { readonly cert: string; readonly key: string } | undefined
}): Effect.Effect<HttpServer.HttpServer, StartError, Scope.Scope> =>
  Effect.gen(function*() {
    const tls = options.tls
    const server = yield* Effect.try({
      try: (): http.Server =>
        tls === undefined ? http.createServer() : https.createServer({ cert: tls.cert, key: tls.key }),
      catch: (e) => new StartError({ reason: "tls", detail: describe(e) })
    })
    const served = yield* NodeHttpServer.make(() => server, { port: options.port, host: options.host }).pipe(
      Effect.mapError((e) => new StartError({ reason: "listen", detail: describe(e.cause) }))
    )
    // Finalizers run in reverse order: drop keep-alive connections first, so closing the server does not wait.
    yield* Effect.addFinalizer(() => Effect.sync(() => server.closeAllConnections()))
    return served
  })

/**
 * A real HTTP server on 127.0.0.1 (random port) for integration tests, started and stopped inside the test's scope.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as http from "node:http"
import * as https from "node:https"
import type * as net from "node:net"

export interface ServerRequest {
  readonly method: string
  readonly url: URL
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly form: Record<string, string>
}

export type Handler = (request: ServerRequest, res: http.ServerResponse) => void

export interface LoopbackServer {
  readonly url: string
  readonly port: number
  readonly requests: Array<ServerRequest>
}

/** Starts the server; with `tls` (a certificate and key, e.g. from `tls.ts`) it serves https. */
export const listen = (
  handler: Handler,
  tls?: { readonly certPem: string; readonly keyPem: string }
): Effect.Effect<LoopbackServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; info: LoopbackServer; sockets: Set<net.Socket> }>((resume) => {
      const scheme = tls === undefined ? "http" : "https"
      const requests: Array<ServerRequest> = []
      const sockets = new Set<net.Socket>()
      const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          const request: ServerRequest = {
            method: req.method ?? "GET",
            url: new URL(req.url ?? "/", `${scheme}://127.0.0.1`),
            headers: req.headers,
            body,
            form: (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")
              ? Object.fromEntries(new URLSearchParams(body))
              : {}
          }
          requests.push(request)
          handler(request, res)
        })
      }
      const server = tls === undefined
        ? http.createServer(onRequest)
        : https.createServer({ cert: tls.certPem, key: tls.keyPem }, onRequest)
      server.on("connection", (s) => {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resume(Effect.succeed({ server, sockets, info: { url: `${scheme}://127.0.0.1:${port}`, port, requests } }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ info }) => info))

export const sendJson = (
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {}
) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

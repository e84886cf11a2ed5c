/**
 * A real HTTP server on 127.0.0.1 (random port) for integration tests, started and stopped inside the test's scope.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as http from "node:http"
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

export const listen = (handler: Handler): Effect.Effect<LoopbackServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; info: LoopbackServer }>((resume) => {
      const requests: Array<ServerRequest> = []
      const sockets = new Set<net.Socket>()
      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          const request: ServerRequest = {
            method: req.method ?? "GET",
            url: new URL(req.url ?? "/", "http://127.0.0.1"),
            headers: req.headers,
            body,
            form: (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")
              ? Object.fromEntries(new URLSearchParams(body))
              : {}
          }
          requests.push(request)
          handler(request, res)
        })
      })
      server.on("connection", (s) => {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
      })
      ;(server as any).__sockets = sockets
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resume(Effect.succeed({ server, info: { url: `http://127.0.0.1:${port}`, port, requests } }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        for (const s of (server as any).__sockets as Set<net.Socket>) s.destroy()
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

/**
 * An https server on 127.0.0.1 (random port) with a certificate issued by a test CA, started and stopped inside
 * the test's scope; same request recording as `loopbackServer.ts`.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as https from "node:https"
import type * as net from "node:net"
import type { Handler, LoopbackServer, ServerRequest } from "./loopbackServer.js"
import type { CertificateAuthority, Issued } from "./tls.js"
import { makeCertificateAuthority } from "./tls.js"

export const listenHttps = (tls: Issued, handler: Handler): Effect.Effect<LoopbackServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: https.Server; info: LoopbackServer; sockets: Set<net.Socket> }>((resume) => {
      const requests: Array<ServerRequest> = []
      const sockets = new Set<net.Socket>()
      const server = https.createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          const request: ServerRequest = {
            method: req.method ?? "GET",
            url: new URL(req.url ?? "/", "https://127.0.0.1"),
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
      server.on("secureConnection", (s) => {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resume(Effect.succeed({ server, sockets, info: { url: `https://127.0.0.1:${port}`, port, requests } }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ info }) => info))

/** One CA and one leaf certificate for 127.0.0.1 per test file (key generation is slow). */
let authority: Promise<{ ca: CertificateAuthority; leaf: Issued }> | undefined
export const testTls = () =>
  Effect.promise(() =>
    authority ??= makeCertificateAuthority().then(async (ca) => ({
      ca,
      leaf: await ca.issue({ commonName: "127.0.0.1", hosts: ["127.0.0.1"] })
    }))
  )

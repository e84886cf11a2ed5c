/**
 * What a token request looks like on the wire, through the real Node client (`effect-azure-identity/node`), seen by
 * a raw TCP server on 127.0.0.1: the request carries its `content-length` and arrives whole in one piece (headers and
 * body in one write: no Nagle / delayed-ACK stall between them), connections are reused, and a response body is
 * read by its declared `content-length` (a body cut short is a network failure, not a hang or a truncated token).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as net from "node:net"
import { ClientSecretCredential, TokenCredential } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { failureOf, withEnv } from "../support/helpers.js"

interface WireRequest {
  /** The `data` events the server saw until the request (headers and body) was complete. */
  readonly pieces: number
  readonly contentLength: string | undefined
  readonly bodyBytes: number
  readonly connection: number
}

/**
 * A raw HTTP/1.1 server: records how each request arrived, then answers with `answer(n)` (n = 1, 2, …), the raw
 * bytes of a response; `cut` closes the connection after writing it.
 */
const rawServer = (
  answer: (n: number) => { readonly bytes: string; readonly cut?: boolean }
): Effect.Effect<{ readonly url: string; readonly requests: Array<WireRequest> }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: net.Server; sockets: Set<net.Socket>; url: string; requests: Array<WireRequest> }>(
      (resume) => {
        const requests: Array<WireRequest> = []
        const sockets = new Set<net.Socket>()
        let connections = 0
        const server = net.createServer((socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          const connection = ++connections
          let buffer = Buffer.alloc(0)
          let pieces = 0
          socket.on("data", (chunk: Buffer) => {
            buffer = Buffer.concat([buffer, chunk])
            pieces++
            const end = buffer.indexOf("\r\n\r\n")
            if (end < 0) return
            const head = buffer.subarray(0, end).toString("latin1")
            const contentLength = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1]
            const bodyBytes = buffer.length - end - 4
            if (contentLength === undefined || bodyBytes < Number(contentLength)) return
            requests.push({ pieces, contentLength, bodyBytes, connection })
            buffer = Buffer.alloc(0)
            pieces = 0
            const reply = answer(requests.length)
            if (reply.cut === true) socket.end(reply.bytes)
            else socket.write(reply.bytes)
          })
        })
        server.listen(0, "127.0.0.1", () =>
          resume(Effect.succeed({
            server,
            sockets,
            requests,
            url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
          })))
      }
    ),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ requests, url }) => ({ requests, url })))

const tokenBody = (n: number) =>
  JSON.stringify({ token_type: "Bearer", expires_in: 3599, access_token: `wire-token-${n}-${"x".repeat(1100)}` })

const response = (body: string, declared = Buffer.byteLength(body)) =>
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n` +
  `connection: keep-alive\r\n\r\n${body}`

const credential = (authorityHost: string) =>
  ClientSecretCredential.layer({
    tenantId: "11111111-2222-3333-4444-555555555555",
    clientId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    clientSecret: Redacted.make("wire-secret"),
    authorityHost,
    retryPolicy: { maxRetries: 0 }
  }).pipe(Layer.provide(IdentityNode.layer))

describe("token requests on the wire (real Node client, loopback)", () => {
  it.scopedLive("each request carries content-length and arrives in one piece; the connections are reused", () =>
    Effect.gen(function*() {
      const server = yield* rawServer((n) => ({ bytes: response(tokenBody(n)) }))
      const tokens = yield* Effect.gen(function*() {
        const credential = yield* TokenCredential.TokenCredential
        const out: Array<string> = []
        for (let i = 0; i < 5; i++) {
          out.push(Redacted.value((yield* credential.getToken(`https://resource-${i}.example.com/.default`)).token))
        }
        return out
      }).pipe(Effect.provide(credential(server.url)), withEnv({}))
      assert.deepStrictEqual(tokens.map((t) => t.slice(0, 13)), [1, 2, 3, 4, 5].map((n) => `wire-token-${n}-`))
      assert.strictEqual(tokens[0]!.length, `wire-token-1-`.length + 1100)
      assert.strictEqual(server.requests.length, 5)
      // keep-alive: the connections are reused (undici's pool may open a second one for a request dispatched right
      // after the previous answer, before it counts the first connection as free again; never one per request)
      assert.isAtMost(Math.max(...server.requests.map((r) => r.connection)), 2, JSON.stringify(server.requests))
      for (const request of server.requests) {
        assert.strictEqual(request.contentLength, String(request.bodyBytes))
        assert.strictEqual(request.pieces, 1, "headers and body arrive in one piece")
      }
    }))

  it.scopedLive("a body shorter than its declared content-length is a network failure, not a truncated token", () =>
    Effect.gen(function*() {
      const body = tokenBody(1)
      const server = yield* rawServer(() => ({
        bytes: response(body.slice(0, 200), Buffer.byteLength(body)),
        cut: true
      }))
      const exit = yield* TokenCredential.getToken("https://vault.azure.net/.default").pipe(
        Effect.provide(credential(server.url)),
        withEnv({}),
        Effect.exit
      )
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "no answer from the token endpoint")
      assert.strictEqual(server.requests.length, 1)
    }))
})

/**
 * Issue 13 against real loopback servers and the real Node client: response bodies are read with a cap (an endless
 * or huge body costs at most about 1 MiB, measured as bytes the server got to send), and an IMDS endpoint that
 * refuses connections or never answers is given up at once inside a chain. Only 127.0.0.1 is contacted.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import {
  ChainedTokenCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  TokenCredential
} from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { failureOf, withEnv } from "../support/helpers.js"
import { listen } from "../support/loopbackServer.js"

const SCOPE = "https://vault.azure.net/.default"
const MiB = 1024 * 1024
const noArc = { himdsPaths: [path.join(os.tmpdir(), "effect-azure-identity-no-himds")] }

/** Sends `{"access_token":"` and then `x` for ever (up to `limit` bytes), counting what the socket accepted. */
const endless = (limit: number) => {
  const sent = { bytes: 0 }
  const handler = (_: unknown, res: http.ServerResponse) => {
    res.writeHead(200, { "content-type": "application/json" })
    const chunk = Buffer.alloc(64 * 1024, "x")
    const pump = () => {
      while (sent.bytes < limit && !res.destroyed) {
        sent.bytes += chunk.length
        if (!res.write(chunk)) return void res.once("drain", pump)
      }
      if (!res.destroyed) res.end()
    }
    res.write("{\"access_token\":\"")
    pump()
  }
  return { sent, handler }
}

/** A TCP port on 127.0.0.1 that refuses connections (a server was there and closed). */
const refusingPort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A TCP server on 127.0.0.1 that accepts connections and never answers. */
const silentServer: Effect.Effect<number, never, Scope.Scope> = Effect.acquireRelease(
  Effect.async<{ server: net.Server; sockets: Set<net.Socket>; port: number }>((resume) => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((s) => {
      sockets.add(s)
      s.on("close", () => sockets.delete(s))
    })
    server.listen(
      0,
      "127.0.0.1",
      () => resume(Effect.succeed({ server, sockets, port: (server.address() as net.AddressInfo).port }))
    )
  }),
  ({ server, sockets }) =>
    Effect.async<void>((resume) => {
      for (const s of sockets) s.destroy()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ port }) => port))

const getToken = <E, R>(layer: Layer.Layer<TokenCredential.TokenCredential, E, R>) =>
  TokenCredential.getToken(SCOPE).pipe(Effect.provide(layer), Effect.exit)

describe("bounded reading of response bodies (loopback)", () => {
  it.scopedLive("an endless token response stops being read after 1 MiB: a typed error", () =>
    Effect.gen(function*() {
      const body = endless(256 * MiB)
      const server = yield* listen(body.handler)
      const exit = yield* getToken(
        ClientSecretCredential.layer({
          tenantId: "11111111-2222-3333-4444-555555555555",
          clientId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
          clientSecret: Redacted.make("bounded-secret"),
          authorityHost: server.url
        }).pipe(Layer.provide(IdentityNode.layer))
      ).pipe(withEnv({}))
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, `larger than ${MiB} bytes`)
      assert.strictEqual(server.requests.length, 1, "a too-large body is not retried")
      // what the server got to send: the 1 MiB read plus socket buffers, never the 256 MiB on offer
      assert.isBelow(body.sent.bytes, 32 * MiB)
      console.log(`endless token body: the server sent ${(body.sent.bytes / MiB).toFixed(1)} MiB before the cut`)
    }))

  it.scopedLive("a declared content-length over 1 MiB is refused before reading", () =>
    Effect.gen(function*() {
      const server = yield* listen((_, res) => {
        res.writeHead(400, { "content-type": "application/json", "content-length": String(600 * MiB) })
        res.write("{\"error\":\"invalid_client\",\"error_description\":\"")
      })
      const exit = yield* getToken(
        ClientSecretCredential.layer({
          tenantId: "11111111-2222-3333-4444-555555555555",
          clientId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
          clientSecret: Redacted.make("bounded-secret"),
          authorityHost: server.url
        }).pipe(Layer.provide(IdentityNode.layer))
      ).pipe(withEnv({}))
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "ClientAuthenticationError")
      assert.include(error.message, "HTTP 400 with a body larger than")
    }))

  it.scopedLive("an endless IMDS answer: unavailable (not IMDS), bounded", () =>
    Effect.gen(function*() {
      const body = endless(256 * MiB)
      const server = yield* listen(body.handler)
      const exit = yield* getToken(
        ManagedIdentityCredential.layer({ imdsEndpoint: server.url, azureArc: noArc })
          .pipe(Layer.provide(IdentityNode.layer))
      ).pipe(withEnv({}))
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.include(error.message, "larger than")
      assert.isBelow(body.sent.bytes, 32 * MiB)
    }))
})

describe("an absent IMDS is given up at once in a chain (loopback)", () => {
  it.scopedLive("refused: the chain moves on after one attempt; alone, three attempts", () =>
    Effect.gen(function*() {
      const port = yield* refusingPort
      const imdsEndpoint = `http://127.0.0.1:${port}`
      const chained = failureOf(
        yield* getToken(
          ChainedTokenCredential.layer(ManagedIdentityCredential.layer({ imdsEndpoint, azureArc: noArc }))
            .pipe(Layer.provide(IdentityNode.layer))
        ).pipe(withEnv({}))
      )
      assert.strictEqual(chained._tag, "ChainedAuthenticationError")
      assert.include(chained.message, "could not be reached (ECONNREFUSED)")
      const alone = failureOf(
        yield* getToken(
          ManagedIdentityCredential.layer({ imdsEndpoint, azureArc: noArc, imdsRetryPolicy: { baseDelayMillis: 5 } })
            .pipe(Layer.provide(IdentityNode.layer))
        ).pipe(withEnv({}))
      )
      assert.strictEqual(alone._tag, "CredentialUnavailableError")
      assert.include(alone.message, "after 3 attempts (ECONNREFUSED)")
    }))

  it.scopedLive("silent (accepts TCP, never answers): the chain gives up after the probe timeout", () =>
    Effect.gen(function*() {
      const port = yield* silentServer
      const error = failureOf(
        yield* getToken(
          ChainedTokenCredential.layer(
            ManagedIdentityCredential.layer({
              imdsEndpoint: `http://127.0.0.1:${port}`,
              azureArc: noArc,
              probeTimeoutMillis: 100
            })
          ).pipe(Layer.provide(IdentityNode.layer))
        ).pipe(withEnv({}))
      )
      assert.strictEqual(error._tag, "ChainedAuthenticationError")
      assert.include(error.message, "did not answer the probe within 100 ms")
    }))
})

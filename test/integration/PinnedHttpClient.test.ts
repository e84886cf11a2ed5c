/**
 * The Node PinnedHttpClient (`src/node.ts`) on its own: it accepts exactly the pinned certificate.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as https from "node:https"
import type * as net from "node:net"
import { PinnedHttpClient } from "../../src/index.js"
import * as IdentityNode from "../../src/node.js"
import { listen, sendJson } from "../support/loopbackServer.js"
import { makeSelfSigned } from "../support/tls.js"

const pinOf = (hex: string) => Either.getOrThrow(PinnedHttpClient.parseThumbprint(hex))

const causeCode = (error: unknown): string | undefined => {
  let current: any = error
  for (let i = 0; i < 5 && current !== undefined && current !== null; i++) {
    if (typeof current.code === "string") return current.code
    current = current.cause
  }
  return undefined
}

const pinned = (hex: string) =>
  Effect.flatMap(PinnedHttpClient.PinnedHttpClient, (service) => service.make(pinOf(hex))).pipe(
    Effect.provide(IdentityNode.layerPinnedHttpClient)
  )

describe("PinnedHttpClient (Node)", () => {
  it("parses thumbprints as people write them", () => {
    assert.deepStrictEqual(
      PinnedHttpClient.parseThumbprint(" ab:".repeat(1) + "CD".repeat(19)),
      Either.right({
        algorithm: "sha1",
        hex: "AB" + "CD".repeat(19)
      })
    )
    assert.strictEqual(Either.getOrThrow(PinnedHttpClient.parseThumbprint("0".repeat(64))).algorithm, "sha256")
    assert.isTrue(Either.isLeft(PinnedHttpClient.parseThumbprint("zz".repeat(20))))
    assert.isTrue(Either.isLeft(PinnedHttpClient.parseThumbprint("")))
  })

  it.live("accepts the pinned self-signed certificate; refuses another, plain http, and reports refused connections", () =>
    Effect.gen(function*() {
      const certificate = yield* Effect.promise(() => makeSelfSigned({ commonName: "pinned", hosts: ["127.0.0.1"] }))
      const server = yield* Effect.acquireRelease(
        Effect.async<https.Server>((resume) => {
          const s = https.createServer({ cert: certificate.certPem, key: certificate.keyPem }, (_, res) => {
            res.writeHead(200, { "content-type": "text/plain" })
            res.end("pinned ok")
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) =>
          Effect.async<void>((resume) => {
            s.closeAllConnections()
            s.close(() => resume(Effect.void))
          })
      )
      const url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/`

      const good = yield* pinned(certificate.sha1Hex)
      const text = yield* Effect.flatMap(good.get(url), (r) => r.text)
      assert.strictEqual(text, "pinned ok")

      const wrong = yield* pinned("00".repeat(32))
      const refused = yield* Effect.flip(good.get(url).pipe(Effect.zipRight(wrong.get(url))))
      assert.strictEqual(causeCode(refused), PinnedHttpClient.thumbprintMismatchCode)

      // the default client does not trust it at all
      const plain = yield* Effect.flip(
        Effect.flatMap(HttpClient.HttpClient, (c) => c.get(url)).pipe(Effect.provide(IdentityNode.layer))
      )
      assert.notStrictEqual(causeCode(plain), undefined)

      const http = yield* listen((_, res) => sendJson(res, 200, {}))
      const overHttp = yield* Effect.flip(good.get(http.url))
      assert.strictEqual(causeCode(overHttp), PinnedHttpClient.thumbprintMismatchCode)
      assert.strictEqual(http.requests.length, 0)

      const closedPort = yield* Effect.flip(good.get("https://127.0.0.1:1/"))
      assert.strictEqual(causeCode(closedPort), "ECONNREFUSED")
    }).pipe(Effect.scoped))
})

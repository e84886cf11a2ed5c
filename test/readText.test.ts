/**
 * `readText` (src/internal/http.ts): a body with a declared `content-length` within the cap is read whole; a body
 * whose length is not known in advance — none declared, or a content coding that a decoding client (fetch) expands
 * past the declared length — is streamed and cut at the cap.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { readText } from "../src/internal/http.js"

const request = HttpClientRequest.get("https://login.example.com/token")

/** A response as a decoding client hands it over: `body` is what the client produces, `headers` what the server sent. */
const responseOf = (body: string, headers: Record<string, string>) =>
  HttpClientResponse.fromWeb(request, new Response(body, { headers }))

describe("readText", () => {
  it.effect("a declared length within the cap: the body, read whole", () =>
    Effect.gen(function*() {
      const body = JSON.stringify({ access_token: "x".repeat(1100) })
      const text = yield* readText(responseOf(body, { "content-length": String(body.length) }), 4096)
      assert.strictEqual(text, body)
    }))

  it.effect("a declared length over the cap: refused before reading", () =>
    Effect.gen(function*() {
      const failure = yield* Effect.flip(readText(responseOf("small", { "content-length": "5000" }), 4096))
      assert.strictEqual(failure._tag, "TransportFailure")
      assert.strictEqual(failure._tag === "TransportFailure" ? failure.kind : undefined, "too-large")
    }))

  it.effect("no declared length: streamed and cut at the cap", () =>
    Effect.gen(function*() {
      const failure = yield* Effect.flip(readText(responseOf("y".repeat(10_000), {}), 4096))
      assert.strictEqual(failure._tag === "TransportFailure" ? failure.kind : undefined, "too-large")
    }))

  it.effect("a content coding: the decoded body is streamed with the cap, whatever length was declared", () =>
    Effect.gen(function*() {
      // a gzip body of 100 bytes on the wire that a decoding client expands to 10,000
      const response = responseOf("z".repeat(10_000), { "content-length": "100", "content-encoding": "gzip" })
      const failure = yield* Effect.flip(readText(response, 4096))
      assert.strictEqual(failure._tag === "TransportFailure" ? failure.kind : undefined, "too-large")
    }))
})

/**
 * The tests' mock `HttpClient`: the public `TestHttpClient` kit under the names the tests use.
 */
import type * as Effect from "effect/Effect"
import * as TestHttpClient from "../../src/TestHttpClient.js"

export type Recorded = TestHttpClient.Recorded
export type Answer = TestHttpClient.Answer
export type MockHttp = TestHttpClient.Unsafe

export const reset: Answer = TestHttpClient.connectionReset
export const json = TestHttpClient.json
export const text = TestHttpClient.text
export const tokenBody = TestHttpClient.tokenBody

/** Answers each request with `handler(request, index)`; records the requests in order. */
export const mockHttp = (
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>
): MockHttp => TestHttpClient.unsafeMake(handler)

/** A client for tests where no network may be touched: any request is a defect. */
export const dieHttp = TestHttpClient.layerUnreachable

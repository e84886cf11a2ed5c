/**
 * The lean token transport of `effect-azure-identity/node` (src/internal/nodeTransport.ts), against an http server
 * on 127.0.0.1: credentials given the Node layer's own client send through it, any other client (the same client
 * wrapped by the application) is used as given; and the transport itself behaves like the platform's undici client
 * (request as built, body readers, typed errors, interruption, undici options from the context).
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Undici from "@effect/platform-node/Undici"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as http from "node:http"
import type * as net from "node:net"
import { ClientSecretCredential, TokenCredential } from "../../src/index.js"
import * as Http from "../../src/internal/http.js"
import * as NodeTransport from "../../src/internal/nodeTransport.js"
import * as IdentityNode from "../../src/node.js"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

/** An http server on 127.0.0.1: records each request, answers with `answer` (or never, for `hang`). */
const server = (
  answer: (req: Seen, res: http.ServerResponse) => void
): Effect.Effect<{ readonly origin: string; readonly seen: Array<Seen> }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ origin: string; seen: Array<Seen>; server: http.Server }>((resume) => {
      const seen: Array<Seen> = []
      const s = http.createServer((req, res) => {
        let body = ""
        req.on("data", (c: Buffer) => (body += c.toString("utf8")))
        req.on("end", () => {
          const entry = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body }
          seen.push(entry)
          answer(entry, res)
        })
      })
      s.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          origin: `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`,
          seen,
          server: s
        })))
    }),
    ({ server: s }) =>
      Effect.async<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
  )

const token = (res: http.ServerResponse) => {
  res.setHeader("content-type", "application/json")
  res.end(JSON.stringify({ token_type: "Bearer", expires_in: 3599, access_token: "lean-token" }))
}

const credentialLayer = (authorityHost: string) =>
  ClientSecretCredential.layer({
    tenantId: "tenant",
    clientId: "client",
    clientSecret: Redacted.make("client-secret-value"),
    authorityHost
  })

/** The lean transport on its own undici Agent, closed with the scope. */
const leanClient = Effect.map(
  Effect.acquireRelease(Effect.sync(() => new Undici.Agent()), (agent) => Effect.promise(() => agent.destroy())),
  NodeTransport.make
)

/** The platform's undici client, to compare with. */
const platformClient = Effect.map(
  Effect.acquireRelease(Effect.sync(() => new Undici.Agent()), (agent) => Effect.promise(() => agent.destroy())),
  NodeHttpClient.makeUndici
)

describe("Node layer: the token transport", () => {
  it.scoped("the layer's client carries the lean transport, and credentials given it get their token", () =>
    Effect.gen(function*() {
      const { origin, seen } = yield* server((_, res) => token(res))
      const client = yield* Effect.provide(HttpClient.HttpClient, IdentityNode.layer)
      assert.notStrictEqual(Http.tokenTransport(client), client)
      const got = yield* Effect.provide(
        TokenCredential.getToken("https://vault.azure.net/.default"),
        credentialLayer(origin).pipe(Layer.provide(IdentityNode.layer))
      )
      assert.strictEqual(Redacted.value(got.token), "lean-token")
      assert.strictEqual(seen.length, 1)
      assert.match(seen[0]!.body, /grant_type=client_credentials/)
      assert.strictEqual(seen[0]!.headers["x-client-sku"], "effect-azure-identity")
    }))

  it.scoped("the same client wrapped by the application is used as given (its request mapping applies)", () =>
    Effect.gen(function*() {
      const { origin, seen } = yield* server((_, res) => token(res))
      const wrapped = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, HttpClient.mapRequest(HttpClientRequest.setHeader("x-wrapped", "yes")))
      ).pipe(Layer.provide(IdentityNode.layer))
      const client = yield* Effect.provide(HttpClient.HttpClient, wrapped)
      assert.strictEqual(Http.tokenTransport(client), client)
      yield* Effect.provide(
        TokenCredential.getToken("https://vault.azure.net/.default"),
        credentialLayer(origin).pipe(Layer.provide(Layer.merge(IdentityNode.layer, wrapped)))
      )
      assert.strictEqual(seen.length, 1)
      assert.strictEqual(seen[0]!.headers["x-wrapped"], "yes")
    }))
})

describe("Node layer: the direct exchange", () => {
  /** Undici request options that change nothing: their presence alone sends requests through the client. */
  const noOptions = {} as Undici.Dispatcher.RequestOptions
  const getToken = (origin: string, scope: string) =>
    TokenCredential.getToken(scope).pipe(
      Effect.provide(credentialLayer(origin).pipe(Layer.provide(IdentityNode.layer)))
    )

  it.live("sends the request the client would send (the same line, headers and form; a fresh request id)", () =>
    Effect.gen(function*() {
      const { origin, seen } = yield* server((_, res) => token(res))
      const scope = "https://vault.azure.net/.default"
      // the direct exchange (live Clock, nothing in the context that it cannot honour) …
      yield* getToken(origin, scope)
      // … and the client: with undici request options in the context, requests go through the client
      yield* getToken(origin, scope).pipe(Effect.provideService(NodeHttpClient.UndiciRequestOptions, noOptions))
      assert.strictEqual(seen.length, 2)
      const [direct, viaClient] = seen as [Seen, Seen]
      assert.strictEqual(direct.method, viaClient.method)
      assert.strictEqual(direct.url, viaClient.url)
      assert.strictEqual(direct.body, viaClient.body)
      const headers = (h: http.IncomingHttpHeaders) =>
        Object.fromEntries(Object.entries(h).filter(([name]) => name !== "client-request-id").sort())
      assert.deepStrictEqual(headers(direct.headers), headers(viaClient.headers))
      assert.notStrictEqual(direct.headers["client-request-id"], viaClient.headers["client-request-id"])
    }).pipe(Effect.scoped))

  it.live("a body over the limit, a connection reset and an HTML page are the same typed errors as via the client", () =>
    Effect.gen(function*() {
      let mode = "html"
      const { origin } = yield* server((_, res) => {
        if (mode === "reset") return res.socket?.destroy()
        res.statusCode = mode === "html" ? 400 : 200
        res.setHeader("content-type", mode === "html" ? "text/html" : "application/json")
        res.end(mode === "html" ? "<html><title>Proxy says no</title></html>" : "x".repeat(2 * 1024 * 1024))
      })
      const both = (scope: string) =>
        Effect.all([
          Effect.flip(getToken(origin, scope)),
          Effect.flip(
            getToken(origin, scope).pipe(Effect.provideService(NodeHttpClient.UndiciRequestOptions, noOptions))
          )
        ])
      const [htmlDirect, htmlClient] = yield* both("https://a.example/.default")
      assert.strictEqual(htmlDirect.message, htmlClient.message)
      assert.include(htmlDirect.message, "Proxy says no")
      mode = "large"
      const [largeDirect, largeClient] = yield* both("https://b.example/.default")
      assert.strictEqual(largeDirect.message, largeClient.message)
      assert.include(largeDirect.message, "larger than")
      mode = "reset"
      const options = { maxRetries: 0 }
      const reset = (scope: string, viaClient: boolean) =>
        Effect.flip(
          TokenCredential.getToken(scope).pipe(
            Effect.provide(
              ClientSecretCredential.layer({
                tenantId: "tenant",
                clientId: "client",
                clientSecret: Redacted.make("client-secret-value"),
                authorityHost: origin,
                retryPolicy: options
              }).pipe(Layer.provide(IdentityNode.layer))
            ),
            viaClient ? Effect.provideService(NodeHttpClient.UndiciRequestOptions, noOptions) : (self) => self
          )
        )
      const resetDirect = yield* reset("https://c.example/.default", false)
      const resetClient = yield* reset("https://c.example/.default", true)
      assert.strictEqual(resetDirect._tag, "CredentialUnavailableError")
      assert.strictEqual(resetDirect.message, resetClient.message)
    }).pipe(Effect.scoped))
})

describe("the lean transport", () => {
  it.scoped("sends the request as built: method, URL parameters, headers, body; reads status, headers, cookies", () =>
    Effect.gen(function*() {
      const { origin, seen } = yield* server((_, res) => {
        res.setHeader("set-cookie", ["a=1; Path=/", "b=2; Path=/"])
        res.setHeader("x-answer", "42")
        res.statusCode = 201
        res.end("created")
      })
      const client = yield* leanClient
      const response = yield* client.execute(
        HttpClientRequest.post(`${origin}/path`).pipe(
          HttpClientRequest.setUrlParam("q", "1"),
          HttpClientRequest.setHeader("x-sent", "yes"),
          HttpClientRequest.bodyText("hello", "text/plain")
        )
      )
      assert.strictEqual(response.status, 201)
      assert.strictEqual(response.headers["x-answer"], "42")
      assert.strictEqual(response.headers, response.headers)
      assert.deepStrictEqual(Object.keys(response.cookies.cookies).sort(), ["a", "b"])
      assert.isTrue(Option.isNone(response.remoteAddress))
      assert.strictEqual(yield* response.text, "created")
      // read twice: the same body
      assert.strictEqual(yield* response.text, "created")
      assert.strictEqual(seen[0]!.method, "POST")
      assert.strictEqual(seen[0]!.url, "/path?q=1")
      assert.strictEqual(seen[0]!.headers["x-sent"], "yes")
      assert.strictEqual(seen[0]!.body, "hello")
      assert.include(JSON.stringify(response.toJSON()), "\"status\":201")
    }))

  it.scoped("json, URL-encoded and form bodies; a response without cookies; an empty JSON body is null", () =>
    Effect.gen(function*() {
      const { origin } = yield* server((req, res) => {
        if (req.url === "/json") {
          res.setHeader("content-type", "application/json")
          res.end("{\"a\":1}")
        } else if (req.url === "/empty") {
          res.end()
        } else {
          res.setHeader("content-type", "application/x-www-form-urlencoded")
          res.end("x=1&y=2")
        }
      })
      const client = yield* leanClient
      const json = yield* client.execute(HttpClientRequest.get(`${origin}/json`))
      assert.deepStrictEqual(yield* json.json, { a: 1 })
      assert.strictEqual(Object.keys(json.cookies.cookies).length, 0)
      assert.strictEqual(
        yield* Effect.flatMap(client.execute(HttpClientRequest.get(`${origin}/empty`)), (r) => r.json),
        null
      )
      const params = yield* Effect.flatMap(
        client.execute(HttpClientRequest.get(`${origin}/form`)),
        (r) => r.urlParamsBody
      )
      assert.deepStrictEqual([...params], [["x", "1"], ["y", "2"]])
      // undici's `Dispatcher` bodies have no `formData()`: a decode error, as with the platform's undici client
      const formOf = (c: HttpClient.HttpClient) =>
        Effect.flip(Effect.flatMap(c.execute(HttpClientRequest.get(`${origin}/form`)), (r) => r.formData))
      const viaLean = yield* formOf(client)
      const viaPlatform = yield* Effect.flatMap(platformClient, formOf)
      assert.strictEqual(viaLean._tag === "ResponseError" ? viaLean.reason : undefined, "Decode")
      assert.strictEqual(viaPlatform._tag === "ResponseError" ? viaPlatform.reason : undefined, "Decode")
    }))

  it.scoped("stream bodies both ways, and FormData and empty request bodies", () =>
    Effect.gen(function*() {
      const { origin, seen } = yield* server((req, res) => res.end(`echo:${req.body}`))
      const client = yield* leanClient
      const streamed = yield* client.execute(
        HttpClientRequest.post(`${origin}/s`).pipe(
          HttpClientRequest.bodyStream(Stream.make(new TextEncoder().encode("ab"), new TextEncoder().encode("cd")))
        )
      )
      const chunks = yield* Stream.runCollect(streamed.stream)
      const text = Chunk.toReadonlyArray(chunks).map((c) => new TextDecoder().decode(c)).join("")
      assert.strictEqual(text, "echo:abcd")
      // a FormData body is handed to undici as it is, as the platform's undici client does (and fails alike)
      const form = new FormData()
      form.set("field", "value")
      const formRequest = HttpClientRequest.post(`${origin}/f`).pipe(HttpClientRequest.bodyFormData(form))
      const viaLean = yield* Effect.either(client.execute(formRequest))
      const viaPlatform = yield* Effect.either(Effect.flatMap(platformClient, (c) => c.execute(formRequest)))
      assert.strictEqual(viaLean._tag, viaPlatform._tag)
      assert.strictEqual(seen.length, 1)
      assert.strictEqual(
        yield* Effect.flatMap(client.execute(HttpClientRequest.get(`${origin}/e`)), (r) =>
          r.arrayBuffer.pipe(Effect.map((b) => b.byteLength))),
        "echo:".length
      )
    }))

  it.scoped("typed errors: an invalid URL, a refused connection, a body that is not JSON", () =>
    Effect.gen(function*() {
      const { origin } = yield* server((_, res) => res.end("not json"))
      const client = yield* leanClient
      const invalid = yield* Effect.flip(client.execute(HttpClientRequest.get("http://[not a url")))
      assert.strictEqual(invalid._tag === "RequestError" ? invalid.reason : undefined, "InvalidUrl")
      // a port nothing listens on (the server's, once closed, could be reused: take a fresh one and close it)
      const closed = yield* Effect.scoped(server(() => {}))
      const refused = yield* Effect.flip(client.execute(HttpClientRequest.get(`${closed.origin}/`)))
      assert.strictEqual(refused._tag === "RequestError" ? refused.reason : undefined, "Transport")
      const notJson = yield* Effect.flip(
        Effect.flatMap(client.execute(HttpClientRequest.get(`${origin}/`)), (r) => r.json)
      )
      assert.strictEqual(notJson._tag === "ResponseError" ? notJson.reason : undefined, "Decode")
    }))

  it.scoped("interrupting a request that waits for its answer closes the connection", () =>
    Effect.gen(function*() {
      const received = yield* Deferred.make<void>()
      const closed = yield* Deferred.make<string>()
      const { origin } = yield* server((req, res) => {
        Deferred.unsafeDone(received, Exit.void)
        res.on("close", () => Deferred.unsafeDone(closed, Exit.succeed(req.url)))
      })
      const client = yield* leanClient
      const fiber = yield* Effect.fork(client.execute(HttpClientRequest.get(`${origin}/hang`)))
      yield* Deferred.await(received)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* Deferred.await(closed), "/hang")
    }))

  it.scoped("undici options in the context are passed to undici (one it refuses fails the request)", () =>
    Effect.gen(function*() {
      const { origin } = yield* server((_, res) => {
        res.statusCode = 503
        res.end("busy")
      })
      const client = yield* leanClient
      const plain = yield* client.execute(HttpClientRequest.get(`${origin}/`))
      assert.strictEqual(plain.status, 503)
      const failed = yield* Effect.flip(
        client.execute(HttpClientRequest.get(`${origin}/`)).pipe(
          // undici 7 refuses `throwOnError` (an interceptor does it now): proof that the option reached it
          Effect.provideService(NodeHttpClient.UndiciRequestOptions, { throwOnError: true } as never)
        )
      )
      assert.strictEqual(failed._tag === "RequestError" ? failed.reason : undefined, "Transport")
    }))
})

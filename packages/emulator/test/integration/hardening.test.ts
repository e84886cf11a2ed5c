/**
 * The emulator under input a client should not send and in the hands of a tracer: a body over 1 MiB is an
 * Entra-shaped 413 on a connection that stays usable, and no secret a request carries (App Service's identity
 * header and secret, Azure Arc's key, a bearer token, an authorization code in a redirect) reaches a span.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Tracer from "effect/Tracer"
import * as fs from "node:fs"
import * as http from "node:http"
import { withEnv } from "../../../../test/support/helpers.js"
import * as IdentityEmulator from "../../src/IdentityEmulator.js"

const SCOPE = "https://vault.azure.net/.default"

interface RawAnswer {
  readonly status: number
  readonly json: any
  readonly reusedSocket: boolean
}

/** One request on `agent` (one keep-alive connection); `chunks` are written one by one (chunked when no length). */
const request = (
  agent: http.Agent,
  url: string,
  options: { readonly chunks: ReadonlyArray<string>; readonly contentLength?: boolean }
) =>
  Effect.promise(() =>
    new Promise<RawAnswer>((resolve, reject) => {
      const length = options.chunks.reduce((n, c) => n + Buffer.byteLength(c), 0)
      const req = http.request(url, {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          ...(options.contentLength === false ? {} : { "content-length": String(length) })
        }
      }, (response) => {
        let body = ""
        response.setEncoding("utf8")
        response.on("data", (chunk) => (body += chunk))
        response.on("end", () => {
          let json: any = undefined
          try {
            json = JSON.parse(body)
          } catch {
            json = undefined
          }
          resolve({ status: response.statusCode ?? 0, json, reusedSocket: req.reusedSocket })
        })
      })
      req.on("error", reject)
      for (const chunk of options.chunks) req.write(chunk)
      req.end()
    })
  )

describe("IdentityEmulator: bodies over 1 MiB", () => {
  it.live("are an Entra-shaped 413, with or without Content-Length, and the connection stays usable", () =>
    Effect.gen(function*() {
      const emulator = yield* IdentityEmulator.make()
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
      const valid = new URLSearchParams({
        grant_type: "client_credentials",
        client_id: emulator.clientId,
        client_secret: Redacted.value(emulator.clientSecret),
        scope: SCOPE
      }).toString()
      const big = "grant_type=" + "x".repeat(2 * 1024 * 1024)
      const tooLarge = (answer: RawAnswer) => {
        assert.strictEqual(answer.status, 413)
        assert.strictEqual(answer.json?.error, "invalid_request")
        assert.deepStrictEqual(answer.json.error_codes, [90015])
        assert.match(answer.json.error_description, /^AADSTS90015: /)
        assert.isString(answer.json.trace_id)
      }
      const first = yield* request(agent, emulator.endpoints.token, { chunks: [valid] })
      assert.strictEqual(first.status, 200)
      tooLarge(yield* request(agent, emulator.endpoints.token, { chunks: [big] }))
      const afterLength = yield* request(agent, emulator.endpoints.token, { chunks: [valid] })
      assert.strictEqual(afterLength.status, 200)
      assert.isTrue(afterLength.reusedSocket, "the connection survived the refused body")
      // chunked: no length announced, so it is read, but no more than 1 MiB of it kept
      const pieces = Array.from({ length: 24 }, () => "x".repeat(100_000))
      tooLarge(
        yield* request(agent, emulator.endpoints.token, { chunks: ["grant_type=", ...pieces], contentLength: false })
      )
      const afterChunked = yield* request(agent, emulator.endpoints.token, { chunks: [valid] })
      assert.strictEqual(afterChunked.status, 200)
      assert.isTrue(afterChunked.reusedSocket)
      // a chunked body under the cap is read once, though the token route and its grant both decode it
      const chunkedValid = yield* request(agent, emulator.endpoints.token, {
        chunks: [valid.slice(0, 10), valid.slice(10)],
        contentLength: false
      })
      assert.strictEqual(chunkedValid.status, 200)
      assert.isString(chunkedValid.json?.access_token)
      const statuses = (yield* emulator.requests).map((r) => r.status)
      assert.deepStrictEqual(statuses, [200, 413, 200, 413, 200, 200])
    }).pipe(Effect.scoped, withEnv({})))
})

/** A tracer that records every attribute of every span, on top of the default one. */
const recordingTracer = Effect.map(Effect.tracer, (native) => {
  const attributes: Array<readonly [string, unknown]> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = native.span(...args)
      const recording: Tracer.Span = Object.create(span)
      Object.assign(recording, {
        attribute: (key: string, value: unknown) => {
          attributes.push([key, value])
          span.attribute(key, value)
        }
      })
      return recording
    },
    context: native.context
  })
  return { tracer, attributes }
})

describe("IdentityEmulator: secrets in spans", () => {
  it.live("http.server spans never carry the identity header, the MSI secret, the Arc key, a bearer or a code", () =>
    Effect.gen(function*() {
      const { attributes, tracer } = yield* recordingTracer
      const secrets = yield* Effect.gen(function*() {
        const emulator = yield* IdentityEmulator.make({
          identityHeader: "identity-header-secret-1111",
          msiSecret: "msi-secret-2222",
          apps: [{ clientId: IdentityEmulator.defaultClientId, secrets: ["s"], publicClient: true }]
        })
        const q = "?api-version=2019-08-01&resource=https://vault.azure.net"
        const get = (url: string, headers: Record<string, string>) =>
          Effect.promise(() => fetch(url, { headers, redirect: "manual" }))
        const appService = yield* get(`${emulator.endpoints.appService2019}${q}`, {
          "X-IDENTITY-HEADER": "identity-header-secret-1111"
        })
        assert.strictEqual(appService.status, 200)
        const legacy = yield* get(`${emulator.endpoints.msiEndpoint}${q}`, { secret: "msi-secret-2222" })
        assert.strictEqual(legacy.status, 200)
        const challenge = yield* get(`${emulator.endpoints.arc}${q}`, { Metadata: "true" })
        const keyFile = /^Basic realm=(.+)$/.exec(challenge.headers.get("www-authenticate") ?? "")![1]!
        const arcKey = fs.readFileSync(keyFile, "utf8")
        const arc = yield* get(`${emulator.endpoints.arc}${q}`, { Metadata: "true", Authorization: `Basic ${arcKey}` })
        assert.strictEqual(arc.status, 200)
        yield* get(emulator.endpoints.openidConfiguration, { Authorization: "Bearer bearer-secret-3333" })
        const authorize = yield* get(
          `${emulator.endpoints.authorize}?${new URLSearchParams({
            client_id: emulator.clientId,
            redirect_uri: "http://localhost:8400/callback",
            prompt: "none"
          })}`,
          {}
        )
        assert.strictEqual(authorize.status, 302)
        const code = new URL(authorize.headers.get("location")!).searchParams.get("code")!
        return ["identity-header-secret-1111", "msi-secret-2222", arcKey, "bearer-secret-3333", code]
      }).pipe(Effect.withTracer(tracer), Effect.scoped)
      // the spans were recorded, headers included (redacted), so the check below is not vacuous
      const names = new Set(attributes.map(([key]) => key))
      for (
        const name of [
          "http.request.header.x-identity-header",
          "http.request.header.secret",
          "http.request.header.authorization",
          "http.response.header.location"
        ]
      ) assert.isTrue(names.has(name), name)
      const metadata = attributes.find(([key]) => key === "http.request.header.metadata")
      assert.strictEqual(metadata?.[1], "true", "Metadata is no secret and stays readable")
      for (const [key, value] of attributes) {
        const text = String(value)
        for (const secret of secrets) assert.notInclude(text, secret, key)
      }
    }).pipe(withEnv({})))
})

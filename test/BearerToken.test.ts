import * as Headers from "@effect/platform/Headers"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { AccessToken, BearerToken, IdentityError, TokenCredential } from "../src/index.js"
import { captureLogs, setNow, T0 } from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { mockHttp, reset } from "./support/mockHttp.js"

const SCOPE = "https://management.azure.com/.default"
const URL_ = "https://management.azure.com/subscriptions?api-version=2022-12-01"
const CLAIMS = `{"access_token":{"nbf":{"essential":true,"value":"1726258122"}}}`
const CLAIMS_B64 = Buffer.from(CLAIMS).toString("base64")
const CLAIMS_B64URL = Buffer.from(CLAIMS).toString("base64url")

const caeChallenge = (claims = CLAIMS_B64) =>
  `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", ` +
  `error="insufficient_claims", claims="${claims}"`

const tenantChallenge = (tenant: string) =>
  `Bearer authorization_uri="https://login.microsoftonline.com/${tenant}/oauth2/authorize", ` +
  `error="invalid_token", error_description="The access token is from the wrong issuer"`

interface Call {
  readonly scopes: ReadonlyArray<string>
  readonly options: TokenCredential.GetTokenOptions | undefined
}

/** A credential that hands out `token-1`, `token-2`, … and records every call. */
const fakeCredential = (fail?: IdentityError.IdentityError) => {
  const calls: Array<Call> = []
  const service = TokenCredential.make("FakeCredential", (scopes, options) =>
    Effect.suspend(() => {
      calls.push({ scopes: typeof scopes === "string" ? [scopes] : scopes, options })
      if (fail !== undefined) return Effect.fail(fail)
      return Effect.succeed(AccessToken.make({
        token: `token-${calls.length}`,
        obtainedAtMillis: T0,
        expiresOnMillis: T0 + 3600_000
      }))
    }))
  return { calls, service, layer: Layer.succeed(TokenCredential.TokenCredential, service) }
}

const response = (status: number, headers: Record<string, string> = {}, body = "") =>
  new Response(status === 204 ? null : body, { status, headers })

const setup = (
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  options: Partial<BearerToken.Options> = {}
) => {
  const http = mockHttp(handler)
  const credential = fakeCredential()
  const client = http.client.pipe(BearerToken.withCredential(credential.service, { scopes: SCOPE, ...options }))
  return { http, credential, client }
}

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

describe("BearerToken middleware", () => {
  it.effect("adds Authorization: Bearer for the scopes, with CAE declared", () =>
    Effect.gen(function*() {
      yield* setNow
      const { client, credential, http } = setup(() => response(200, {}, "ok"))
      const res = yield* client.get(URL_)
      assert.strictEqual(res.status, 200)
      assert.strictEqual(yield* res.text, "ok")
      assert.strictEqual(http.requests.length, 1)
      assert.strictEqual(http.requests[0]!.headers.authorization, "Bearer token-1")
      assert.deepStrictEqual(credential.calls, [{ scopes: [SCOPE], options: { enableCae: true } }])
    }))

  it.effect("a token with control characters (or anything a header cannot carry) is a typed error, never sent", () =>
    Effect.gen(function*() {
      for (const bad of ["tok\nen", "tok\r\nX-Evil: 1", "tok\u0000en", "tok\u007fen", "tok en", "tök", "t\tok"]) {
        const http = mockHttp(() => response(200))
        const credential = TokenCredential.make(
          "OddCredential",
          () => Effect.succeed(AccessToken.make({ token: bad, obtainedAtMillis: T0, expiresOnMillis: T0 + 3600_000 }))
        )
        const client = http.client.pipe(BearerToken.withCredential(credential, { scopes: SCOPE }))
        const error = failureOf(yield* Effect.exit(client.get(URL_)))
        assert.strictEqual(error._tag, "ClientAuthenticationError", JSON.stringify(bad))
        assert.include(error.message, "OddCredential")
        assert.include(error.message, "cannot be sent in an HTTP header")
        assert.notInclude(error.message, bad)
        assert.strictEqual(http.requests.length, 0)
      }
      // every character a JWT or an opaque token68 uses still goes through
      const { client, http } = setup(() => response(200))
      yield* client.get(URL_)
      assert.strictEqual(http.requests[0]!.headers.authorization, "Bearer token-1")
    }))

  it.effect("passes tenantId and enableCae: false from the options", () =>
    Effect.gen(function*() {
      const { client, credential } = setup(() => response(200), { tenantId: "tenant-a", enableCae: false })
      yield* client.get(URL_)
      assert.deepStrictEqual(credential.calls[0]!.options, { tenantId: "tenant-a", enableCae: false })
    }))

  it.effect("never sends a token to an http: URL: a typed error, no request, no token asked for", () =>
    Effect.gen(function*() {
      const { client, credential, http } = setup(() => response(200))
      for (const url of ["http://management.azure.com/x?sig=abc", "http://127.0.0.1:8080/x", "ftp://example.test/x"]) {
        const error = failureOf(yield* Effect.exit(client.get(url)))
        assert.strictEqual(error._tag, "InsecureUrlError")
        if (error._tag !== "InsecureUrlError") return
        assert.include(error.message, "only https: URLs may carry a token")
        assert.notInclude(error.message, "sig=abc")
      }
      const relative = failureOf(yield* Effect.exit(client.get("/relative")))
      assert.strictEqual(relative._tag, "InsecureUrlError")
      assert.strictEqual(http.requests.length, 0)
      assert.strictEqual(credential.calls.length, 0)
    }))

  it.effect("checks the final URL, after the inner client's own request mapping", () =>
    Effect.gen(function*() {
      const http = mockHttp(() => response(200))
      const credential = fakeCredential()
      const insecure = http.client.pipe(
        HttpClient.mapRequest(HttpClientRequest.prependUrl("http://example.test")),
        BearerToken.withCredential(credential.service, { scopes: SCOPE })
      )
      const error = failureOf(yield* Effect.exit(insecure.get("/path")))
      assert.strictEqual(error._tag, "InsecureUrlError")
      assert.strictEqual(http.requests.length, 0)
      const secure = http.client.pipe(
        HttpClient.mapRequest(HttpClientRequest.prependUrl("https://example.test")),
        BearerToken.withCredential(credential.service, { scopes: SCOPE })
      )
      yield* secure.get("/path")
      assert.strictEqual(http.requests[0]!.url.href, "https://example.test/path")
      assert.strictEqual(http.requests[0]!.headers.authorization, "Bearer token-1")
    }))

  it.effect("with followRedirects outside, every hop is checked: a redirect to http: gets no token", () =>
    Effect.gen(function*() {
      const http = mockHttp((request) =>
        request.url.protocol === "https:" && request.url.pathname === "/start"
          ? response(302, { location: "http://management.azure.com/next?sig=abc" })
          : response(200)
      )
      const credential = fakeCredential()
      const client = http.client.pipe(
        BearerToken.withCredential(credential.service, { scopes: SCOPE }),
        HttpClient.followRedirects()
      )
      const error = failureOf(yield* Effect.exit(client.get("https://management.azure.com/start")))
      assert.strictEqual(error._tag, "InsecureUrlError")
      assert.deepStrictEqual(http.requests.map((r) => r.url.protocol), ["https:"])
    }))

  it.effect("a CAE claims challenge gets exactly one retry, with the decoded claims forwarded", () =>
    Effect.gen(function*() {
      const { client, credential, http } = setup((_, i) =>
        i === 0 ? response(401, { "www-authenticate": caeChallenge() }) : response(200, {}, "ok")
      )
      const res = yield* client.get(URL_)
      assert.strictEqual(res.status, 200)
      assert.strictEqual(http.requests.length, 2)
      assert.strictEqual(http.requests[0]!.headers.authorization, "Bearer token-1")
      assert.strictEqual(http.requests[1]!.headers.authorization, "Bearer token-2")
      assert.deepStrictEqual(credential.calls[1], { scopes: [SCOPE], options: { claims: CLAIMS, enableCae: true } })
    }))

  it.effect("a second 401 is returned as is: no loop", () =>
    Effect.gen(function*() {
      const { client, credential, http } = setup(() =>
        response(401, { "www-authenticate": caeChallenge(CLAIMS_B64URL) }, "still no")
      )
      const res = yield* client.get(URL_)
      assert.strictEqual(res.status, 401)
      assert.strictEqual(yield* res.text, "still no")
      assert.strictEqual(http.requests.length, 2)
      assert.strictEqual(credential.calls.length, 2)
      assert.strictEqual(credential.calls[1]!.options?.claims, CLAIMS)
    }))

  it.effect("the tenant challenge gets a token for the named tenant and one retry", () =>
    Effect.gen(function*() {
      const { client, credential, http } = setup(
        (_, i) => i === 0 ? response(401, { "www-authenticate": tenantChallenge("tenant-b") }) : response(200),
        { tenantId: "tenant-a" }
      )
      const res = yield* client.get(URL_)
      assert.strictEqual(res.status, 200)
      assert.strictEqual(http.requests.length, 2)
      assert.deepStrictEqual(credential.calls.map((c) => c.options?.tenantId), ["tenant-a", "tenant-b"])
      assert.strictEqual(http.requests[1]!.headers.authorization, "Bearer token-2")
    }))

  it.effect("a tenant challenge naming the same tenant, or common, is not retried", () =>
    Effect.gen(function*() {
      for (const tenant of ["TENANT-A", "common", "organizations"]) {
        const { client, http } = setup(() => response(401, { "www-authenticate": tenantChallenge(tenant) }), {
          tenantId: "tenant-a"
        })
        const res = yield* client.get(URL_)
        assert.strictEqual(res.status, 401)
        assert.strictEqual(http.requests.length, 1)
      }
    }))

  it.effect("a 401 without a usable Bearer challenge is returned as is", () =>
    Effect.gen(function*() {
      const headers: Array<Record<string, string>> = [
        {},
        { "www-authenticate": "Basic realm=\"x\"" },
        { "www-authenticate": "Bearer error=\"insufficient_claims\", claims=\"!!not base64!!\"" },
        { "www-authenticate": `Bearer error="insufficient_claims", claims="${btoa("[1,2]")}"` },
        { "www-authenticate": "Bearer realm=\"\"" }
      ]
      for (const h of headers) {
        const { client, credential, http } = setup(() => response(401, h))
        const res = yield* client.get(URL_)
        assert.strictEqual(res.status, 401)
        assert.strictEqual(http.requests.length, 1)
        assert.strictEqual(credential.calls.length, 1)
      }
    }))

  it.effect("a 403 or 500 is not a challenge", () =>
    Effect.gen(function*() {
      for (const status of [403, 500]) {
        const { client, http } = setup(() => response(status, { "www-authenticate": caeChallenge() }))
        assert.strictEqual((yield* client.get(URL_)).status, status)
        assert.strictEqual(http.requests.length, 1)
      }
    }))

  it.effect("replays a body it can replay; a streamed body's 401 is returned without a retry", () =>
    Effect.gen(function*() {
      const { client, http } = setup((_, i) =>
        i === 0 ? response(401, { "www-authenticate": caeChallenge() }) : response(201)
      )
      const res = yield* client.post(URL_, {
        body: HttpBody.text(JSON.stringify({ name: "vm-1" }), "application/json")
      })
      assert.strictEqual(res.status, 201)
      assert.strictEqual(http.requests.length, 2)
      assert.deepStrictEqual(http.requests.map((r) => r.body), ["{\"name\":\"vm-1\"}", "{\"name\":\"vm-1\"}"])

      const streamed = setup(() => response(401, { "www-authenticate": caeChallenge() }))
      const request = HttpClientRequest.post(URL_).pipe(
        HttpClientRequest.bodyStream(Stream.make(new TextEncoder().encode("chunk")))
      )
      assert.strictEqual((yield* streamed.client.execute(request)).status, 401)
      assert.strictEqual(streamed.http.requests.length, 1)
    }))

  it.effect("a credential failure is the typed error, and nothing is sent", () =>
    Effect.gen(function*() {
      const http = mockHttp(() => response(200))
      const credential = fakeCredential(
        new IdentityError.CredentialUnavailableError({ credential: "FakeCredential", reason: "not configured" })
      )
      const client = http.client.pipe(BearerToken.withCredential(credential.service, { scopes: SCOPE }))
      const error = failureOf(yield* Effect.exit(client.get(URL_)))
      assert.strictEqual(error._tag, "CredentialUnavailableError")
      assert.strictEqual(http.requests.length, 0)
    }))

  it.effect("the token stays out of logs, even when the caller cleared the redacted header names", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const http = mockHttp(() => response(200))
      const credential = fakeCredential()
      // an inner client that logs every request it sends, headers included
      const logging = HttpClient.make((request) =>
        Effect.zipRight(Effect.log("sending", request), http.client.execute(request))
      )
      const client = logging.pipe(BearerToken.withCredential(credential.service, { scopes: SCOPE }))
      yield* client.get(URL_).pipe(
        Effect.locally(Headers.currentRedactedNames, []),
        Effect.provide(logs.layer)
      )
      assert.strictEqual(http.requests[0]!.headers.authorization, "Bearer token-1")
      const text = logs.lines.join("\n")
      assert.include(text, "authorization")
      assert.include(text, "<redacted>")
      assert.notInclude(text, "token-1")
    }))

  it.effect("a transport error carries the request without its Authorization header", () =>
    Effect.gen(function*() {
      const { client } = setup(() => reset)
      const error = failureOf(yield* Effect.exit(client.get(URL_)))
      assert.strictEqual(error._tag, "RequestError")
      if (error._tag !== "RequestError") return
      assert.isUndefined(error.request.headers.authorization)
      assert.notInclude(JSON.stringify(error), "token-1")
      assert.notInclude(String(error), "token-1")
    }))

  it.effect("a ResponseError of the inner client carries the request without its Authorization header", () =>
    Effect.gen(function*() {
      const http = mockHttp(() => response(500))
      const credential = fakeCredential()
      const client = http.client.pipe(
        HttpClient.filterStatusOk,
        BearerToken.withCredential(credential.service, { scopes: SCOPE })
      )
      const error = failureOf(yield* Effect.exit(client.get(URL_)))
      assert.strictEqual(error._tag, "ResponseError")
      if (error._tag !== "ResponseError") return
      assert.strictEqual(error.response.status, 500)
      assert.isUndefined(error.request.headers.authorization)
      assert.strictEqual(http.requests[0]!.headers.authorization, "Bearer token-1")
    }))

  it.effect("authenticate uses the TokenCredential of the context; make the HttpClient of the context", () =>
    Effect.gen(function*() {
      const http = mockHttp(() => response(200))
      const credential = fakeCredential()
      const client = http.client.pipe(BearerToken.authenticate({ scopes: [SCOPE] }))
      yield* client.get(URL_).pipe(Effect.provide(credential.layer))
      const made = yield* BearerToken.make({ scopes: SCOPE }).pipe(
        Effect.provide(Layer.merge(credential.layer, http.layer))
      )
      yield* made.get(URL_)
      assert.deepStrictEqual(http.requests.map((r) => r.headers.authorization), ["Bearer token-1", "Bearer token-2"])
    }))
})

describe("BearerToken challenges", () => {
  it("parses RFC 7235 challenges: several schemes, quoted strings with commas and escapes", () => {
    assert.deepStrictEqual(
      BearerToken.parseChallenges(
        `Basic realm="a, b", Bearer authorization="https://login.windows.net/t1", resource="https://vault.azure.net", ` +
          `error=insufficient_claims, note="say \\"hi\\"", Negotiate abc123==, PoP nonce="n"`
      ),
      [
        { scheme: "Basic", params: { realm: "a, b" } },
        {
          scheme: "Bearer",
          params: {
            authorization: "https://login.windows.net/t1",
            resource: "https://vault.azure.net",
            error: "insufficient_claims",
            note: "say \"hi\""
          }
        },
        { scheme: "Negotiate", params: {} },
        { scheme: "PoP", params: { nonce: "n" } }
      ]
    )
    assert.deepStrictEqual(BearerToken.parseChallenges(""), [])
    assert.deepStrictEqual(BearerToken.parseChallenges("=\"x\", Bearer Realm = \"r\""), [
      { scheme: "Bearer", params: { realm: "r" } }
    ])
  })

  it("decodes claims in either base64 alphabet, with or without padding; rejects what is not a JSON object", () => {
    assert.deepStrictEqual(BearerToken.decodeClaims(CLAIMS_B64), Option.some(CLAIMS))
    assert.deepStrictEqual(BearerToken.decodeClaims(CLAIMS_B64URL), Option.some(CLAIMS))
    assert.deepStrictEqual(BearerToken.decodeClaims(CLAIMS_B64.replace(/=+$/, "")), Option.some(CLAIMS))
    for (const bad of ["", "!!", "a", btoa("null"), btoa("\"text\""), btoa("{not json")]) {
      assert.isTrue(Option.isNone(BearerToken.decodeClaims(bad)), bad)
    }
  })

  it("reads the tenant of an authorization URI", () => {
    assert.deepStrictEqual(
      BearerToken.tenantFromAuthorizationUri("https://login.microsoftonline.com/72f988bf/oauth2/authorize"),
      Option.some("72f988bf")
    )
    assert.deepStrictEqual(BearerToken.tenantFromAuthorizationUri("https://login.windows.net/t1"), Option.some("t1"))
    for (const none of ["https://login.windows.net/", "https://x/common/oauth2", "not a url", "https://x/a%20b"]) {
      assert.isTrue(Option.isNone(BearerToken.tenantFromAuthorizationUri(none)), none)
    }
  })

  it("prefers the claims challenge over the tenant named beside it", () => {
    assert.deepStrictEqual(
      BearerToken.challengeAction(
        `Bearer authorization_uri="https://login.microsoftonline.com/t2/oauth2/authorize", ` +
          `error="insufficient_claims", claims="${CLAIMS_B64}"`,
        "t1"
      ),
      Option.some({ _tag: "Claims" as const, claims: CLAIMS })
    )
    assert.deepStrictEqual(
      BearerToken.challengeAction(tenantChallenge("t2"), undefined),
      Option.some({ _tag: "Tenant" as const, tenantId: "t2" })
    )
  })

  it.prop("parsing any header never throws", [FastCheck.string({ maxLength: 200 })], ([header]) => {
    const challenges = BearerToken.parseChallenges(header)
    assert.isTrue(Array.isArray(challenges))
    for (const c of challenges) assert.isTrue(c.scheme.length > 0)
    BearerToken.challengeAction(header, "t")
  })

  it.prop(
    "claims round-trip through base64 in both alphabets",
    [FastCheck.dictionary(FastCheck.string({ maxLength: 8 }), FastCheck.string({ maxLength: 8 }))],
    ([claims]) => {
      const json = JSON.stringify({ access_token: claims })
      for (const encoding of ["base64", "base64url"] as const) {
        assert.deepStrictEqual(BearerToken.decodeClaims(Buffer.from(json).toString(encoding)), Option.some(json))
      }
    }
  )
})

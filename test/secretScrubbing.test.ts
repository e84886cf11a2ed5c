/**
 * No secret a credential holds reaches an error, a log line or a span, whatever a server echoes back: a proxy, AD FS
 * or custom authority that repeats the request (its form body, decoded values, JSON, HTML) in `error_description`,
 * other OAuth fields, an HTML `<title>` or a header.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { TokenCredential } from "../src/index.js"
import {
  AuthorizationCodeCredential,
  ChainedTokenCredential,
  ClientAssertionCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  OnBehalfOfCredential,
  UsernamePasswordCredential
} from "../src/index.js"
import * as Scrub from "../src/internal/scrub.js"
import { captureLogs, withCredentialOver } from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, text, tokenBody } from "./support/mockHttp.js"
import { recordingTracer } from "./support/tracing.js"

const TENANT = "11111111-2222-3333-4444-555555555555"
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
const AUTHORITY = "https://login.example.test"
const SCOPE = "https://vault.azure.net/.default"

/** The form fields that carry secrets; echoed first, so they fall inside a clipped title. */
const secretFields = [
  "client_secret",
  "password",
  "client_assertion",
  "assertion",
  "refresh_token",
  "code",
  "code_verifier"
]

const htmlEscape = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

type Spelling = "form" | "raw" | "json" | "html" | "body"

/** What a misbehaving server repeats of the request. */
const echoOf = (r: Recorded, spelling: Spelling): string => {
  const entries = Object.entries(r.form).sort(([a], [b]) =>
    (secretFields.includes(a) ? 0 : 1) - (secretFields.includes(b) ? 0 : 1)
  )
  switch (spelling) {
    case "body":
      return r.body
    case "form":
      return new URLSearchParams(entries).toString()
    case "raw":
      return entries.map(([, v]) => v).join(" ")
    case "json":
      return JSON.stringify(Object.fromEntries(entries))
    case "html":
      return htmlEscape(entries.map(([, v]) => v).join(" "))
  }
}

type Path = "oauth-description" | "oauth-fields" | "html-400" | "html-200" | "json-not-oauth" | "header" | "clipped"

const answerOf = (echo: string, path: Path): Answer => {
  switch (path) {
    case "oauth-description":
      return json(400, {
        error: "invalid_client",
        error_description: `AADSTS7000215: Invalid client secret provided. Request was: ${echo}\r\nTrace ID: x`,
        error_codes: [7000215]
      })
    case "oauth-fields":
      return json(401, {
        error: echo,
        error_description: echo,
        correlation_id: echo,
        trace_id: echo,
        timestamp: echo,
        claims: echo
      })
    case "html-400":
      return text(400, `<html><head><title>${echo.slice(0, 190)}</title></head><body>${echo}</body></html>`)
    case "html-200":
      return text(200, `<html><head><title>${echo.slice(0, 190)}</title></head></html>`)
    case "json-not-oauth":
      return json(400, { message: echo, detail: { request: echo } })
    case "header":
      return new Response("not json", {
        status: 400,
        headers: { "content-type": `text/plain; echo=${encodeURIComponent(echo)}` }
      })
    case "clipped":
      // the server itself cuts the echo: a title holds only the first characters of a secret
      return text(400, `<title>${"x".repeat(90)}${echo}</title>`)
  }
}

interface Case {
  readonly name: string
  /** The credential over the two secrets, and the secrets it actually holds. */
  readonly build: (a: string, b: string) => {
    readonly layer: Layer.Layer<TokenCredential.TokenCredential, never, any>
    readonly secrets: ReadonlyArray<string>
  }
  /** Answers before the echo (e.g. a first grant that hands out a refresh token). */
  readonly before?: (a: string, b: string) => ReadonlyArray<Answer>
  /** The grant type of the request that gets the echo. */
  readonly grantType: string
  /** Scopes of each getToken call; the last one gets the echo. */
  readonly calls: ReadonlyArray<string>
}

const base = { tenantId: TENANT, clientId: CLIENT, authorityHost: AUTHORITY }

const cases: ReadonlyArray<Case> = [
  {
    name: "ClientSecretCredential",
    build: (a) => ({
      layer: ClientSecretCredential.layer({ ...base, clientSecret: Redacted.make(a) }),
      secrets: [a]
    }),
    grantType: "client_credentials",
    calls: [SCOPE]
  },
  {
    name: "UsernamePasswordCredential",
    build: (a, b) => ({
      layer: UsernamePasswordCredential.layer({
        ...base,
        username: "user@contoso.test",
        password: Redacted.make(a),
        clientSecret: Redacted.make(b)
      }),
      secrets: [a, b]
    }),
    grantType: "password",
    calls: [SCOPE]
  },
  {
    name: "ClientAssertionCredential",
    build: (a) => ({
      layer: ClientAssertionCredential.layer({ ...base, getAssertion: Effect.succeed(a) }),
      secrets: [a]
    }),
    grantType: "client_credentials",
    calls: [SCOPE]
  },
  {
    name: "OnBehalfOfCredential",
    build: (a, b) => ({
      layer: OnBehalfOfCredential.layer({
        ...base,
        userAssertionToken: Redacted.make(a),
        clientSecret: Redacted.make(b)
      }),
      secrets: [a, b]
    }),
    grantType: "urn:ietf:params:oauth:grant-type:jwt-bearer",
    calls: [SCOPE]
  },
  {
    name: "AuthorizationCodeCredential (code grant)",
    build: (a, b) => ({
      layer: AuthorizationCodeCredential.layer({
        ...base,
        authorizationCode: Redacted.make(a),
        codeVerifier: Redacted.make(`${b}-verifier`),
        clientSecret: Redacted.make(b),
        redirectUri: "http://localhost:8400"
      }),
      secrets: [a, b, `${b}-verifier`]
    }),
    grantType: "authorization_code",
    calls: [SCOPE]
  },
  {
    name: "AuthorizationCodeCredential (refresh-token grant)",
    build: (a, b) => ({
      layer: AuthorizationCodeCredential.layer({
        ...base,
        authorizationCode: Redacted.make(`${b}-code`),
        clientSecret: Redacted.make(b),
        redirectUri: "http://localhost:8400"
      }),
      secrets: [a, b]
    }),
    before: (a) => [json(200, tokenBody("access-1", 3600, { refresh_token: a }))],
    grantType: "refresh_token",
    calls: [SCOPE, "https://graph.microsoft.com/.default"]
  }
]

const spellings: ReadonlyArray<Spelling> = ["form", "raw", "json", "html", "body"]
const paths: ReadonlyArray<Path> = [
  "oauth-description",
  "oauth-fields",
  "html-400",
  "html-200",
  "json-not-oauth",
  "header",
  "clipped"
]

/** Printable ASCII (spaces, quotes, `+`, `%`, `&`, `<` included) between fixed ends, so no credential trims it. */
const secret = FastCheck.string({ minLength: 6, maxLength: 40 }).map((s) => `S3${s}Z`)

/** Every spelling of a secret that must not appear, and its first 8 characters (a clipped echo). */
const forbidden = (s: string): ReadonlyArray<string> => [
  ...new Set([
    s,
    s.slice(0, 8),
    encodeURIComponent(s),
    new URLSearchParams({ x: s }).toString().slice(2),
    JSON.stringify(s).slice(1, -1),
    htmlEscape(s)
  ])
]

describe("secrets never reach an error, a log or a span", () => {
  for (const c of cases) {
    it.effect.prop(
      c.name,
      [secret, secret, FastCheck.constantFrom(...spellings), FastCheck.constantFrom(...paths)],
      ([a, b, spelling, path]) =>
        Effect.gen(function*() {
          const { layer, secrets } = c.build(a, b)
          const before = c.before?.(a, b) ?? []
          const logs = captureLogs()
          const { spans, tracer } = recordingTracer()
          let echoed: Recorded | undefined
          const exit = yield* withCredentialOver(
            layer,
            (r, i) => {
              if (i < before.length) return before[i]!
              echoed = r
              return answerOf(echoOf(r, spelling), path)
            },
            (credential) =>
              Effect.gen(function*() {
                for (const scope of c.calls.slice(0, -1)) yield* credential.getToken(scope)
                const chain = ChainedTokenCredential.make(credential)
                return yield* Effect.exit(chain.getToken(c.calls[c.calls.length - 1]!))
              })
          ).pipe(Effect.provide(logs.layer), Effect.withTracer(tracer))
          // the echo really carried the secrets: the property is not vacuous
          assert.isDefined(echoed)
          assert.strictEqual(echoed!.form.grant_type, c.grantType)
          for (const s of secrets) assert.include(Object.values(echoed!.form), s)
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isSuccess(exit)) return
          const failure = Cause.squash(exit.cause) as Error
          const inner = (failure as unknown as { errors?: ReadonlyArray<Error> }).errors ?? []
          const texts = [
            failure.message,
            String(failure),
            JSON.stringify(failure),
            Cause.pretty(exit.cause),
            ...inner.flatMap((e) => [e.message, JSON.stringify(e)]),
            ...logs.lines,
            ...spans.flatMap((span) => [
              span.name,
              JSON.stringify([...span.attributes]),
              JSON.stringify(span.events),
              span.exit === undefined || Exit.isSuccess(span.exit) ? "" : Cause.pretty(span.exit.cause)
            ])
          ]
          for (const s of secrets) {
            for (const spelled of forbidden(s)) {
              for (const t of texts) {
                if (t.includes(spelled)) {
                  assert.fail(`${JSON.stringify(spelled)} (of ${JSON.stringify(s)}) leaked into ${JSON.stringify(t)}`)
                }
              }
            }
          }
          // messages stay one bounded line of readable text
          assert.isAtMost(failure.message.length, 10_000)
          for (const e of inner) assert.notMatch(e.message, /[\u0000-\u0008\u000b-\u001f\u007f]/)
        }),
      { fastCheck: { numRuns: 30, seed: 20261201 } }
    )
  }
})

describe("managed identity secrets never reach an error, a log or a span", () => {
  const miSpellings = (secret: string): ReadonlyArray<string> => [
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ x: secret }).toString().slice(2),
    JSON.stringify(secret).slice(1, -1),
    htmlEscape(secret)
  ]
  it.effect.prop(
    "App Service (IDENTITY_HEADER) echoed back",
    [secret, FastCheck.integer({ min: 0, max: 4 }), FastCheck.constantFrom(...paths)],
    ([header, spelling, path]) =>
      Effect.gen(function*() {
        const logs = captureLogs()
        const { spans, tracer } = recordingTracer()
        let echoed: Recorded | undefined
        const exit = yield* withCredentialOver(
          ManagedIdentityCredential.layer({}),
          (r) => {
            echoed = r
            const echo = `${miSpellings(r.headers["x-identity-header"] ?? "")[spelling]} ${JSON.stringify(r.headers)}`
            return answerOf(echo, path)
          },
          (credential) => Effect.exit(ChainedTokenCredential.make(credential).getToken(SCOPE)),
          {
            env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: header },
            deps: (http) => Layer.merge(http.layer, FileSystem.layerNoop({}))
          }
        ).pipe(Effect.provide(logs.layer), Effect.withTracer(tracer))
        assert.isDefined(echoed)
        assert.strictEqual(echoed!.headers["x-identity-header"], header)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isSuccess(exit)) return
        const texts = [
          Cause.pretty(exit.cause),
          JSON.stringify(Cause.squash(exit.cause)),
          ...logs.lines,
          ...spans.flatMap((span) => [
            JSON.stringify([...span.attributes]),
            JSON.stringify(span.events),
            span.exit === undefined || Exit.isSuccess(span.exit) ? "" : Cause.pretty(span.exit.cause)
          ])
        ]
        for (const spelled of forbidden(header)) {
          for (const t of texts) {
            if (t.includes(spelled)) assert.fail(`${JSON.stringify(spelled)} leaked into ${JSON.stringify(t)}`)
          }
        }
      }),
    { fastCheck: { numRuns: 30, seed: 20261201 } }
  )
})

describe("Scrub", () => {
  it("removes every spelling of a secret, in either case of percent-encoding", () => {
    const remove = Scrub.secretRemover([Redacted.make("p@ss w+rd/ü"), "short", undefined])
    const s = "p@ss w+rd/ü"
    for (const spelled of [s, encodeURIComponent(s), encodeURIComponent(s).toLowerCase(), "p%40ss+w%2Brd%2F%C3%BC"]) {
      assert.strictEqual(remove(`a ${spelled} b`), "a <redacted> b")
    }
    assert.strictEqual(remove("abc"), "abc")
  })

  it("redacts Bearer values and secret-named fields, strips control characters, clips", () => {
    assert.strictEqual(
      Scrub.sanitize("Authorization: Bearer abc.def-ghi\u0007 client_secret=xyz&password=hunter22 ok"),
      "Authorization: Bearer <redacted> client_secret=<redacted>&password=<redacted> ok"
    )
    assert.strictEqual(Scrub.sanitize("a\u0000b\nc\u001b[31md"), "ab cd")
    assert.strictEqual(Scrub.sanitize("x".repeat(3000)).length, Scrub.defaultMaxLength + 1)
  })

  it("never throws on any text", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.string(), FastCheck.string({ unit: "binary" }), (t, s) => {
        assert.isString(Scrub.sanitize(t, { remove: Scrub.secretRemover([s]) }))
      }),
      { seed: 7, numRuns: 100 }
    )
  })
})

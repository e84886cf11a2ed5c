/**
 * The direct exchange encodes a token request's form by hand (src/internal/aad.ts `formValue`, `encodeFields`,
 * `tokenFormRequest`): the bytes must be those `URLSearchParams` gives, which the `HttpClient` path sends.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import { encodeFields, formValue, tokenFormRequest } from "../src/internal/aad.js"

const viaSearchParams = (value: string) => new URLSearchParams([["", value]]).toString().slice(1)

/** A fixed sequence of strings from every range that encodes differently (a seeded generator: no randomness). */
const samples = () => {
  let seed = 20261202
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648)
  const ranges: ReadonlyArray<readonly [number, number]> = [
    [0x00, 0x7f], // every ASCII character, controls included
    [0x80, 0x7ff],
    [0x800, 0xd7ff],
    [0xd800, 0xdfff], // surrogates: pairs and lone halves
    [0xe000, 0xffff]
  ]
  const out: Array<string> = []
  for (let i = 0; i < 2000; i++) {
    let s = ""
    const length = next() % 12
    for (let j = 0; j < length; j++) {
      const [low, high] = ranges[next() % ranges.length]!
      s += String.fromCharCode(low + (next() % (high - low + 1)))
    }
    out.push(s)
  }
  return out
}

describe("form encoding of the direct exchange", () => {
  it("encodes every ASCII character, a space and the characters encodeURIComponent keeps as URLSearchParams does", () => {
    for (let code = 0; code < 128; code++) {
      const c = String.fromCharCode(code)
      assert.strictEqual(formValue(c), viaSearchParams(c), `character ${code}`)
    }
    assert.strictEqual(formValue("a b!'()~*-._"), "a+b%21%27%28%29%7E*-._")
  })

  it("encodes non-ASCII text, surrogate pairs and lone surrogates as URLSearchParams does", () => {
    for (const s of [...samples(), "\ud83d\ude00", "\ud83d", "\ude00x", "é ü", "https://vault.azure.net/.default"]) {
      assert.strictEqual(formValue(s), viaSearchParams(s), JSON.stringify(s))
    }
  })

  it("a request's body is the URLSearchParams form of its fields, scope and claims, in that order", () => {
    const fields = {
      client_id: "client id/1",
      grant_type: "client_credentials",
      client_secret: Redacted.make("s3cr3t+/=~!'"),
      unused: undefined
    }
    const scope = "https://vault.azure.net/.default api://x/y.read"
    const claims = "{\"access_token\":{\"xms_cc\":{\"values\":[\"CP1\"]}}}"
    for (const withClaims of [undefined, claims]) {
      const request = tokenFormRequest(
        "https://login.test/t/oauth2/v2.0/token",
        "id",
        encodeFields(fields),
        scope,
        withClaims
      )
      const expected = new URLSearchParams({
        client_id: "client id/1",
        grant_type: "client_credentials",
        client_secret: "s3cr3t+/=~!'",
        scope,
        ...(withClaims === undefined ? {} : { claims: withClaims })
      }).toString()
      assert.strictEqual(new TextDecoder().decode(request.body), expected)
      assert.strictEqual(request.headers["content-length"], String(request.body.length))
    }
    assert.strictEqual(new TextDecoder().decode(tokenFormRequest("u", "id", "", "a b", undefined).body), "scope=a+b")
  })
})

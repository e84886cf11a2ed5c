import { assert, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import {
  errorFields,
  parseAppServiceDate,
  parseIsoDate,
  parseTokenBody,
  scrub
} from "../../src/internal/managedIdentity/response.js"
import { T0 } from "../support/helpers.js"

const HOUR = 3600_000
const T0s = T0 / 1000

const ok = (body: unknown, at = T0) => {
  const parsed = parseTokenBody(body, at)
  if (Either.isLeft(parsed)) throw new Error(`expected a token, got: ${parsed.left}`)
  return {
    token: Redacted.value(parsed.right.token),
    expiresOn: DateTime.toEpochMillis(parsed.right.expiresOn),
    refreshOn: Option.map(parsed.right.refreshOn, DateTime.toEpochMillis).pipe(Option.getOrThrow),
    tokenType: parsed.right.tokenType
  }
}

const bad = (body: unknown, at = T0) => {
  const parsed = parseTokenBody(body, at)
  if (Either.isRight(parsed)) throw new Error("expected a failure")
  return parsed.left
}

describe("managed identity response parsing (§7.4)", () => {
  it("expires_on as a number of epoch seconds", () => {
    const t = ok({ access_token: "a", expires_on: T0s + 3600 })
    assert.strictEqual(t.expiresOn, T0 + HOUR)
    assert.strictEqual(t.refreshOn, T0 + HOUR - 5 * 60_000)
    assert.strictEqual(t.tokenType, "Bearer")
  })

  it("expires_on as a numeric string (IMDS, App Service 2019)", () => {
    const t = ok({ access_token: "a", expires_on: String(T0s + 86_400), expires_in: "86400", token_type: "Bearer" })
    assert.strictEqual(t.expiresOn, T0 + 24 * HOUR)
    // a 24 h token refreshes at half its life
    assert.strictEqual(t.refreshOn, T0 + 12 * HOUR)
  })

  it("a token living exactly 2 h refreshes at half life; just under at expiry − 5 min", () => {
    assert.strictEqual(ok({ access_token: "a", expires_in: 7200 }).refreshOn, T0 + HOUR)
    assert.strictEqual(ok({ access_token: "a", expires_in: 7199 }).refreshOn, T0 + 7199_000 - 300_000)
  })

  it("expires_on as the Linux App Service 2017 date string", () => {
    const t = ok({ access_token: "a", expires_on: "11/27/2026 09:00:00 +00:00" })
    assert.strictEqual(t.expiresOn, T0 + HOUR)
  })

  it("expires_on as the Windows App Service 2017 date string (12-hour clock)", () => {
    assert.strictEqual(ok({ access_token: "a", expires_on: "11/27/2026 9:00:00 AM +00:00" }).expiresOn, T0 + HOUR)
    assert.strictEqual(ok({ access_token: "a", expires_on: "11/27/2026 1:30:00 PM +00:00" }).expiresOn, T0 + 5.5 * HOUR)
    assert.strictEqual(
      ok({ access_token: "a", expires_on: "11/28/2026 12:00:00 AM +00:00" }).expiresOn,
      Date.UTC(2026, 10, 28, 0, 0, 0)
    )
    assert.strictEqual(
      ok({ access_token: "a", expires_on: "11/27/2026 12:30:00 PM +00:00" }).expiresOn,
      Date.UTC(2026, 10, 27, 12, 30, 0)
    )
  })

  it("date strings with another offset, or none (UTC)", () => {
    assert.strictEqual(ok({ access_token: "a", expires_on: "11/27/2026 10:00:00 +01:00" }).expiresOn, T0 + HOUR)
    assert.strictEqual(ok({ access_token: "a", expires_on: "11/27/2026 04:00:00 -05:00" }).expiresOn, T0 + HOUR)
    assert.strictEqual(ok({ access_token: "a", expires_on: "11/27/2026 09:00:00" }).expiresOn, T0 + HOUR)
  })

  it("expires_on as ISO-8601", () => {
    assert.strictEqual(ok({ access_token: "a", expires_on: "2026-11-27T09:00:00Z" }).expiresOn, T0 + HOUR)
    assert.strictEqual(ok({ access_token: "a", expires_on: "2026-11-27T10:00:00+01:00" }).expiresOn, T0 + HOUR)
    assert.strictEqual(ok({ access_token: "a", expires_on: "2026-11-27T09:00:00.000" }).expiresOn, T0 + HOUR)
  })

  it("expires_in as a number or a numeric string, from the request time", () => {
    assert.strictEqual(ok({ access_token: "a", expires_in: 3600 }).expiresOn, T0 + HOUR)
    assert.strictEqual(ok({ access_token: "a", expires_in: "3600" }).expiresOn, T0 + HOUR)
  })

  it("refresh_in and refresh_on are honoured", () => {
    assert.strictEqual(ok({ access_token: "a", expires_in: 86_400, refresh_in: 600 }).refreshOn, T0 + 600_000)
    assert.strictEqual(ok({ access_token: "a", expires_in: 86_400, refresh_in: "600" }).refreshOn, T0 + 600_000)
    assert.strictEqual(
      ok({ access_token: "a", expires_in: 86_400, refresh_on: String(T0s + 1200) }).refreshOn,
      T0 + 1_200_000
    )
    assert.strictEqual(
      ok({ access_token: "a", expires_in: 86_400, refresh_on: "2026-11-27T08:30:00Z" }).refreshOn,
      T0 + 1_800_000
    )
    // unusable refresh hints fall back to the default rule
    assert.strictEqual(ok({ access_token: "a", expires_in: 86_400, refresh_in: "soon" }).refreshOn, T0 + 12 * HOUR)
  })

  it("an expires_on in the past yields to a usable expires_in (server clock differs)", () => {
    assert.strictEqual(ok({ access_token: "a", expires_on: T0s - 10, expires_in: 3600 }).expiresOn, T0 + HOUR)
  })

  it("keeps the token type", () => {
    assert.strictEqual(ok({ access_token: "a", expires_in: 60, token_type: "pop" }).tokenType, "pop")
  })

  it("refuses unusable bodies with a reason naming the field, never a value", () => {
    assert.include(bad({ expires_in: 3600 }), "missing access_token")
    assert.include(bad({ access_token: "", expires_in: 3600 }), "missing access_token")
    assert.include(bad({ access_token: "secret-tok" }), "missing expires_on and expires_in")
    assert.include(bad({ access_token: "secret-tok", expires_on: "tomorrow" }), "expires_on")
    assert.include(bad({ access_token: "secret-tok", expires_on: -5 }), "expires_on")
    assert.include(bad({ access_token: "secret-tok", expires_on: "0" }), "expires_on")
    assert.include(bad({ access_token: "secret-tok", expires_on: { a: 1 } }), "expires_on")
    assert.include(bad({ access_token: "secret-tok", expires_in: "soon" }), "expires_in")
    assert.include(bad({ access_token: "secret-tok", expires_on: T0s - 10 }), "already expired")
    assert.include(bad({ access_token: "secret-tok", expires_on: "13/01/2026 10:00:00 +00:00" }), "expires_on")
    assert.include(bad("text"), "not a JSON object")
    assert.include(bad(null), "not a JSON object")
    assert.include(bad([1]), "not a JSON object")
    for (const body of [{ access_token: "secret-tok", expires_on: "tomorrow" }, { access_token: "secret-tok" }]) {
      assert.notInclude(bad(body), "secret-tok")
    }
  })

  it("App Service date parsing rejects impossible dates", () => {
    for (
      const s of [
        "02/30/2026 10:00:00 +00:00",
        "02/29/2026 10:00:00",
        "00/10/2026 10:00:00",
        "11/27/2026 24:00:00",
        "11/27/2026 13:00:00 PM",
        "11/27/2026 0:00:00 AM",
        "11/27/2026 10:60:00",
        "11/27/2026 10:00:00 +15:00",
        "2026/11/27 10:00:00",
        ""
      ]
    ) {
      assert.isTrue(Option.isNone(parseAppServiceDate(s)), s)
    }
    assert.isTrue(Option.isSome(parseAppServiceDate("02/29/2028 10:00:00")))
    assert.isTrue(Option.isSome(parseAppServiceDate("02/29/2000 10:00:00")))
    assert.isTrue(Option.isNone(parseAppServiceDate("02/29/2100 10:00:00")))
    assert.isTrue(Option.isNone(parseIsoDate("2026-13-45T99:00:00Z")))
    assert.isTrue(Option.isNone(parseIsoDate("yesterday")))
  })

  it.prop(
    "both App Service formats round-trip any instant to the second",
    [FastCheck.integer({ min: Date.UTC(2000, 0, 1) / 1000, max: Date.UTC(2099, 11, 31) / 1000 })],
    ([seconds]) => {
      const d = new Date(seconds * 1000)
      const pad = (n: number) => String(n).padStart(2, "0")
      const linux = `${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${
        pad(d.getUTCMinutes())
      }:${pad(d.getUTCSeconds())} +00:00`
      const h12 = d.getUTCHours() % 12 === 0 ? 12 : d.getUTCHours() % 12
      const windows = `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${h12}:${
        pad(d.getUTCMinutes())
      }:${pad(d.getUTCSeconds())} ${d.getUTCHours() < 12 ? "AM" : "PM"} +00:00`
      assert.deepStrictEqual(parseAppServiceDate(linux), Option.some(seconds * 1000))
      assert.deepStrictEqual(parseAppServiceDate(windows), Option.some(seconds * 1000))
    }
  )

  it("refuses expiries beyond any representable date instead of throwing", () => {
    assert.include(bad({ access_token: "secret-tok", expires_on: 1e13 }), "expires_on")
    assert.include(bad({ access_token: "secret-tok", expires_on: "99999999999999999" }), "expires_on")
    assert.include(bad({ access_token: "secret-tok", expires_in: 1e13 }), "expires_in")
    assert.include(bad({ access_token: "secret-tok", expires_in: "1e400" }), "expires_in")
    // an unusable refresh_on is ignored, as before
    assert.strictEqual(ok({ access_token: "a", expires_in: 3600, refresh_on: 1e13 }).expiresOn, T0 + HOUR)
  })

  it.prop(
    "token bodies with any numbers or numeric strings give a token or a reason, never a throw",
    [
      FastCheck.record({
        expires_on: FastCheck.oneof(FastCheck.double(), FastCheck.double().map(String), FastCheck.constant(undefined)),
        expires_in: FastCheck.oneof(FastCheck.double(), FastCheck.double().map(String), FastCheck.constant(undefined)),
        refresh_in: FastCheck.oneof(FastCheck.double(), FastCheck.constant(undefined)),
        refresh_on: FastCheck.oneof(FastCheck.double(), FastCheck.double().map(String), FastCheck.constant(undefined))
      })
    ],
    ([fields]) => {
      const parsed = parseTokenBody({ access_token: "a", ...fields }, T0)
      assert.isTrue(Either.isLeft(parsed) || Either.isRight(parsed))
    }
  )

  it.prop(
    "any JSON body gives a token or a reason, never a throw",
    [FastCheck.jsonValue()],
    ([value]) => {
      const parsed = parseTokenBody(value, T0)
      assert.isTrue(Either.isLeft(parsed) || Either.isRight(parsed))
    }
  )

  it("reads every host's error body shape", () => {
    assert.deepStrictEqual(
      errorFields(JSON.stringify({ error: "invalid_request", error_description: "Identity not found" })),
      Option.some({ error: "invalid_request", description: "Identity not found" })
    )
    assert.deepStrictEqual(
      errorFields(JSON.stringify({ error: { code: "SecretHeaderNotFound", message: "Secret is not found" } })),
      Option.some({ error: "SecretHeaderNotFound", description: "Secret is not found" })
    )
    assert.deepStrictEqual(
      errorFields(JSON.stringify({ statusCode: 400, message: "bad\nresource" })),
      Option.some({ error: undefined, description: "bad resource" })
    )
    assert.deepStrictEqual(
      errorFields(JSON.stringify({ Message: "An error has occurred." })),
      Option.some({
        error: undefined,
        description: "An error has occurred."
      })
    )
    assert.isTrue(Option.isNone(errorFields("<html/>")))
    assert.isTrue(Option.isNone(errorFields("{}")))
    assert.isTrue(Option.isNone(errorFields("null")))
    const long = Option.getOrThrow(errorFields(JSON.stringify({ error: "x", error_description: "y".repeat(1000) })))
    assert.isTrue(long.description!.length <= 301)
  })

  it("scrubs secrets", () => {
    assert.strictEqual(scrub("header was abcd-1234!", ["abcd-1234"]), "header was <redacted>!")
    assert.strictEqual(scrub("short ab", ["ab"]), "short ab")
  })
})

import { assert, describe, it } from "@effect/vitest"
import { AccessToken, AzureSdk } from "effect-azure-identity"
import * as DateTime from "effect/DateTime"
import * as Equal from "effect/Equal"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

const expiresOnMillis = 1_700_000_000_000
const made = () =>
  AccessToken.make({ token: "secret-token-value", obtainedAtMillis: expiresOnMillis - 3_600_000, expiresOnMillis })
// what `make` returned before its tokens kept the instants as numbers
const plain = (token: AccessToken.AccessToken): AccessToken.AccessToken => ({
  token: token.token,
  expiresOn: DateTime.unsafeMake(expiresOnMillis),
  refreshOn: Option.some(DateTime.unsafeMake(expiresOnMillis - AccessToken.defaultRefreshMarginMillis)),
  tokenType: "Bearer"
})

describe("AccessToken.make (instants kept as epoch milliseconds)", () => {
  it("reads like the plain object: values, keys, prototype, deep equality", () => {
    const token = made()
    assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), expiresOnMillis)
    assert.isTrue(Option.isSome(token.refreshOn))
    assert.strictEqual(
      DateTime.toEpochMillis(Option.getOrThrow(token.refreshOn)),
      expiresOnMillis - AccessToken.defaultRefreshMarginMillis
    )
    assert.strictEqual(Object.getPrototypeOf(token), Object.prototype)
    assert.deepStrictEqual(Object.keys(token), ["token", "expiresOn", "refreshOn", "tokenType"])
    assert.deepStrictEqual(token, plain(token))
    assert.isTrue(Equal.equals(token.expiresOn, token.expiresOn))
    assert.isTrue(Equal.equals(token.refreshOn, plain(token).refreshOn))
  })

  it("spreads and serialises like the plain object", () => {
    const token = made()
    const spread = { ...token, credential: "X" }
    assert.deepStrictEqual(spread, { ...plain(token), credential: "X" })
    assert.strictEqual(JSON.stringify(token), JSON.stringify(plain(token)))
    assert.notInclude(JSON.stringify(token), "secret-token-value")
    assert.strictEqual(Redacted.value(token.token), "secret-token-value")
  })

  it("converts to the Azure SDK shape from the kept milliseconds", () => {
    const token = made()
    assert.deepStrictEqual(AzureSdk.toAzureAccessToken(token), AzureSdk.toAzureAccessToken(plain(token)))
    assert.strictEqual(AzureSdk.toAzureAccessToken(token).expiresOnTimestamp, expiresOnMillis)
  })

  it("rejects an invalid instant as before", () => {
    assert.throws(() => AccessToken.make({ token: "t", obtainedAtMillis: 0, expiresOnMillis: Number.NaN }))
    assert.throws(() => AccessToken.make({ token: "t", obtainedAtMillis: 0, expiresOnMillis: 8.64e15 + 1 }))
    assert.throws(() => AccessToken.make({ token: "t", obtainedAtMillis: 0, expiresOnMillis: Infinity }))
  })

  it("keeps the instants a DateTime would hold (whole milliseconds, the time value's range)", () => {
    for (const millis of [1_700_000_000_000.9, -0.5, 0.4, 8.64e15, -8.64e15, -1_000.7]) {
      const token = AccessToken.make({ token: "t", obtainedAtMillis: millis, expiresOnMillis: millis })
      assert.isTrue(
        Object.is(DateTime.toEpochMillis(token.expiresOn), DateTime.toEpochMillis(DateTime.unsafeMake(millis)))
      )
    }
  })
})

/**
 * The compact form of `AccessToken.make`'s tokens: the two instants are kept as epoch milliseconds and `expiresOn` /
 * `refreshOn` are enumerable accessors that build the `DateTime` (and the `Option`) when read. A cached token then
 * holds one object and two numbers instead of four objects (two `DateTime`s and an `Option`, about 170 bytes less per
 * token: docs/performance.md, "Heap per cached token").
 *
 * The object still behaves as the plain one did: its prototype is `Object.prototype`, `Object.keys`, spread, `JSON`
 * and deep equality see `token`, `expiresOn`, `refreshOn` and `tokenType` with their values (the accessors are own
 * and enumerable; the milliseconds are not enumerable). The accessors are the same two functions for every token, so
 * V8 keeps them in the shared map, not in each object. A read makes a new `DateTime`, equal (`Equal.equals`) to the
 * previous one but not the same object. The library's own hot paths (the cache, the Azure SDK adapter) read the
 * milliseconds with `expiresOnMillis` / `refreshOnMillis` and allocate nothing.
 *
 * @internal
 */
import * as DateTime from "effect/DateTime"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { AccessToken } from "../AccessToken.js"

const expiresKey = Symbol.for("effect-azure-identity/AccessToken/expiresOnMillis")
const refreshKey = Symbol.for("effect-azure-identity/AccessToken/refreshOnMillis")

interface Compact {
  readonly [expiresKey]: number
  readonly [refreshKey]: number
}

const expiresOn: PropertyDescriptor = {
  get(this: Compact) {
    return DateTime.unsafeMake(this[expiresKey])
  },
  enumerable: true,
  configurable: true
}
const refreshOn: PropertyDescriptor = {
  get(this: Compact) {
    return Option.some(DateTime.unsafeMake(this[refreshKey]))
  },
  enumerable: true,
  configurable: true
}

/** @internal */
export const make = (
  token: Redacted.Redacted<string>,
  expiresOnMillis: number,
  refreshOnMillis: number,
  tokenType: string
): AccessToken => {
  // One property order for every token (the keys of the plain form): V8 gives them all one map. An empty literal
  // has room for four fields in the object itself (token, tokenType and the two numbers; the accessors live in the
  // map): `{ token }` would have room for one and put the rest in a separate array.
  const self: Record<PropertyKey, unknown> = {}
  self.token = token
  // one `defineProperty` per accessor: `Object.defineProperties` with both took twice as long
  Object.defineProperty(self, "expiresOn", expiresOn)
  Object.defineProperty(self, "refreshOn", refreshOn)
  self.tokenType = tokenType
  Object.defineProperty(self, expiresKey, { value: expiresOnMillis })
  Object.defineProperty(self, refreshKey, { value: refreshOnMillis })
  return self as unknown as AccessToken
}

/** `expiresOn` in epoch milliseconds, without building a `DateTime` for a compact token. @internal */
export const expiresOnMillis = (token: AccessToken): number => {
  const millis = (token as Partial<Compact>)[expiresKey]
  return millis !== undefined ? millis : DateTime.toEpochMillis(token.expiresOn)
}

/** `refreshOn` in epoch milliseconds (`undefined` for none), without building anything for a compact token. @internal */
export const refreshOnMillis = (token: AccessToken): number | undefined => {
  const millis = (token as Partial<Compact>)[refreshKey]
  if (millis !== undefined) return millis
  return Option.isSome(token.refreshOn) ? DateTime.toEpochMillis(token.refreshOn.value) : undefined
}

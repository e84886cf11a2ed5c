/**
 * Parsing of managed-identity token responses: every `expires_on` / `expires_in` / `refresh_in` / `refresh_on`
 * variant the Azure hosts send, normalised to epoch milliseconds, and the error bodies they answer with.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as AccessToken from "../../AccessToken.js"
import { controlCharacter, maxAccessTokenLength, maxEpochMillis } from "../aad.js"
import { parseJson } from "../http.js"
import * as Scrub from "../scrub.js"

/** An instant, or why it could not be read. */
type Parsed = Either.Either<number, string>

const numericPattern = /^\s*\d+(\.\d+)?\s*$/

const daysInMonth = (year: number, month: number): number => {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return [4, 6, 9, 11].includes(month) ? 30 : 31
}

/**
 * `MM/DD/YYYY HH:MM:SS +00:00` (Linux App Service) and `M/D/YYYY h:mm:ss AM +00:00` (Windows App Service), with an
 * optional offset (UTC when absent), as epoch milliseconds.
 *
 * @internal
 */
export const parseAppServiceDate = (input: string): Option.Option<number> => {
  const match =
    /^\s*(\d{1,2})\/(\d{1,2})\/(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})(?:\s*([AaPp][Mm]))?(?:\s*(?:(Z)|([+-])(\d{2}):?(\d{2})))?\s*$/
      .exec(input)
  if (match === null) return Option.none()
  const [, mo, d, y, h, mi, s, ampm, zulu, sign, oh, om] = match
  const month = Number(mo)
  const day = Number(d)
  const year = Number(y)
  let hour = Number(h)
  const minute = Number(mi)
  const second = Number(s)
  if (month < 1 || month > 12 || day < 1 || day > 31 || minute > 59 || second > 59) return Option.none()
  if (ampm !== undefined) {
    if (hour < 1 || hour > 12) return Option.none()
    const pm = ampm.toUpperCase() === "PM"
    hour = hour % 12 + (pm ? 12 : 0)
  } else if (hour > 23) {
    return Option.none()
  }
  if (day > daysInMonth(year, month)) return Option.none()
  const utc = Date.UTC(year, month - 1, day, hour, minute, second)
  const offsetMinutes = zulu !== undefined || sign === undefined
    ? 0
    : (sign === "-" ? -1 : 1) * (Number(oh) * 60 + Number(om))
  if (Math.abs(offsetMinutes) > 14 * 60) return Option.none()
  return Option.some(utc - offsetMinutes * 60_000)
}

/**
 * An ISO-8601 date-time with a zone (`2026-11-27T08:00:00Z`, `…+01:00`); one without a zone is read as UTC.
 *
 * @internal
 */
export const parseIsoDate = (input: string): Option.Option<number> => {
  const trimmed = input.trim()
  const match = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(trimmed)
  if (match === null) return Option.none()
  const withZone = match[3] === undefined ? `${trimmed}Z` : trimmed
  const millis = Date.parse(withZone.replace(" ", "T"))
  return Number.isNaN(millis) ? Option.none() : Option.some(millis)
}

/** Refuses an instant a `DateTime` cannot hold (a server sending milliseconds, or garbage). */
const representable = (field: string) => (parsed: Parsed): Parsed =>
  Either.flatMap(
    parsed,
    (millis) =>
      millis <= maxEpochMillis ? Either.right(millis) : Either.left(`${field} is beyond any representable date`)
  )

const parseInstantUnchecked = (field: string, value: unknown): Parsed => {
  if (typeof value === "number") {
    return Number.isFinite(value) && value > 0
      ? Either.right(Math.round(value * 1000))
      : Either.left(`${field} is not a positive number of seconds`)
  }
  if (typeof value !== "string") return Either.left(`${field} is neither a number nor a string`)
  if (numericPattern.test(value)) {
    const seconds = Number(value)
    return seconds > 0 ? Either.right(Math.round(seconds * 1000)) : Either.left(`${field} is zero`)
  }
  const date = Option.orElse(parseIsoDate(value), () => parseAppServiceDate(value))
  return Option.match(date, {
    onNone: () => Either.left(`${field} is not epoch seconds or a date this library reads`),
    onSome: Either.right
  })
}

/** Epoch seconds (number or numeric string) or a date string, as epoch milliseconds. */
const parseInstant = (field: string, value: unknown): Parsed =>
  representable(field)(parseInstantUnchecked(field, value))

/** A duration in seconds (number or numeric string), as milliseconds. */
const parseSeconds = (field: string, value: unknown): Parsed => {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return Either.right(Math.round(value * 1000))
  if (typeof value === "string" && numericPattern.test(value)) return Either.right(Math.round(Number(value) * 1000))
  return Either.left(`${field} is not a number of seconds`)
}

/**
 * Reads a 2xx token body: `access_token` (required), `token_type`, the expiry from `expires_on` (epoch seconds as a
 * number or numeric string, ISO-8601, or an App Service date string) else `expires_in` (seconds from
 * `obtainedAtMillis`), and the refresh point from `refresh_in` / `refresh_on` when given (else half the lifetime for
 * tokens living ≥ 2 h, else five minutes before expiry: see `AccessToken.make`). An `expires_on` in the past next to
 * a usable `expires_in` (a server clock ahead of or behind ours) yields to `expires_in`.
 *
 * Fails with a description naming the field, never a value.
 *
 * @internal
 */
export const parseTokenBody = (
  body: unknown,
  obtainedAtMillis: number
): Either.Either<AccessToken.AccessToken, string> => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return Either.left("the body is not a JSON object")
  }
  const b = body as Record<string, unknown>
  if (typeof b.access_token !== "string" || b.access_token === "") return Either.left("missing access_token")
  if (b.access_token.length > maxAccessTokenLength) {
    return Either.left(`access_token is longer than ${maxAccessTokenLength} characters`)
  }
  if (controlCharacter.test(b.access_token)) return Either.left("access_token holds a control character")
  const fromOn = b.expires_on === undefined || b.expires_on === null || b.expires_on === ""
    ? undefined
    : parseInstant("expires_on", b.expires_on)
  const fromIn = b.expires_in === undefined || b.expires_in === null || b.expires_in === ""
    ? undefined
    : representable("expires_in")(Either.map(parseSeconds("expires_in", b.expires_in), (ms) => obtainedAtMillis + ms))
  let expiresOnMillis: number
  if (fromOn !== undefined && Either.isRight(fromOn) && fromOn.right > obtainedAtMillis) {
    expiresOnMillis = fromOn.right
  } else if (fromIn !== undefined && Either.isRight(fromIn) && fromIn.right > obtainedAtMillis) {
    expiresOnMillis = fromIn.right
  } else if (fromOn !== undefined && Either.isLeft(fromOn)) {
    return Either.left(fromOn.left)
  } else if (fromIn !== undefined && Either.isLeft(fromIn)) {
    return Either.left(fromIn.left)
  } else if (fromOn === undefined && fromIn === undefined) {
    return Either.left("missing expires_on and expires_in")
  } else {
    return Either.left("the token has already expired by this machine's clock: check the system time")
  }
  let refreshInMillis: number | undefined
  if (b.refresh_in !== undefined && b.refresh_in !== null && b.refresh_in !== "") {
    const parsed = parseSeconds("refresh_in", b.refresh_in)
    if (Either.isRight(parsed) && parsed.right > 0) refreshInMillis = parsed.right
  } else if (b.refresh_on !== undefined && b.refresh_on !== null && b.refresh_on !== "") {
    const parsed = parseInstant("refresh_on", b.refresh_on)
    if (Either.isRight(parsed) && parsed.right > obtainedAtMillis) refreshInMillis = parsed.right - obtainedAtMillis
  }
  return Either.right(AccessToken.make({
    token: b.access_token,
    obtainedAtMillis,
    expiresOnMillis,
    refreshInMillis,
    tokenType: typeof b.token_type === "string" ? b.token_type : undefined
  }))
}

/** The fields of an error body, whichever shape the host uses. @internal */
export interface ErrorFields {
  readonly error?: string | undefined
  readonly description?: string | undefined
}

const clip = (s: string, max = 300): string => Scrub.sanitize(s, { maxLength: max })

/**
 * Reads `{error, error_description}` (IMDS, Entra), `{error: {code, message}}` (Service Fabric),
 * `{statusCode, message}` / `{Message}` (App Service).
 *
 * @internal
 */
export const errorFields = (text: string): Option.Option<ErrorFields> => {
  const json = parseJson(text)
  if (Option.isNone(json) || typeof json.value !== "object" || json.value === null) return Option.none()
  const b = json.value as Record<string, unknown>
  const str = (u: unknown) => (typeof u === "string" && u.trim() !== "" ? clip(u) : undefined)
  if (typeof b.error === "object" && b.error !== null) {
    const e = b.error as Record<string, unknown>
    return Option.some({ error: str(e.code), description: str(e.message) })
  }
  const error = str(b.error) ?? str(b.code)
  const description = str(b.error_description) ?? str(b.message) ?? str(b.Message)
  if (error === undefined && description === undefined) return Option.none()
  return Option.some({ error, description })
}

/** Replaces every secret value in `text`, in each spelling, with `<redacted>` (see `scrub.ts`). @internal */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => Scrub.secretRemover(secrets)(text)

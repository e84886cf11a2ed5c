/**
 * What the developer-tool credentials (`az`, `azd`, PowerShell) and `AzurePipelinesCredential` need at import: the
 * output parsing helpers their public `interpret` functions use, and a front for `makeCredential` that loads
 * `developerTool.ts` (running the tool as a child process) with `import()` when a credential is built, so that
 * importing the library does not parse it (docs/performance.md, "Import cost").
 *
 * @internal
 */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { InvalidArgumentError } from "../IdentityError.js"
import type * as DeveloperTool from "./developerTool.js"
import { lazyModule } from "./lazy.js"
import * as Scrub from "./scrub.js"

const developerTool = lazyModule(() => import("./developerTool.js"))

/** `developerTool.makeCredential`, loaded on first use. @internal */
export const makeCredential = (
  ...args: Parameters<typeof DeveloperTool.makeCredential>
): ReturnType<typeof DeveloperTool.makeCredential> =>
  Effect.flatMap(developerTool, (impl) => impl.makeCredential(...args))

/**
 * Text from a tool made safe for an error message (see `scrub.ts`): ANSI colours and control characters removed,
 * anything that looks like a credential (a JWT, `Bearer …`, the value of a `token` / `accessToken` /
 * `refresh_token` / `client_secret` / `password` field) replaced by `<redacted>`, whitespace collapsed and the length
 * bounded.
 *
 * @internal
 */
export const sanitize = (text: string, maxLength = 600): string => Scrub.sanitize(text, { maxLength })

const subscriptionPattern = /^[0-9A-Za-z._ -]+$/

/** Subscriptions are names or ids: letters, digits, `.`, `_`, `-` and spaces. @internal */
export const validateSubscription = (subscription: string): Either.Either<string, InvalidArgumentError> =>
  subscriptionPattern.test(subscription) && !subscription.startsWith("-")
    ? Either.right(subscription)
    : Either.left(
      new InvalidArgumentError({
        argument: "subscription",
        reason: `invalid subscription ${JSON.stringify(subscription.slice(0, 80))}: use the subscription id or ` +
          `name (letters, digits, spaces and . _ - only, not starting with '-')`
      })
    )

const localDateTimePattern = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/

/**
 * Parses a naive local date-time as the Azure CLI prints it in `expiresOn` (`2026-11-27 09:15:00.123456`, produced by
 * Python's `datetime.fromtimestamp`, i.e. in the local time zone of the machine) into epoch milliseconds, reading
 * it in `zone`. Across a daylight-saving change an ambiguous time takes the earlier instant.
 *
 * @internal
 */
export const parseLocalDateTime = (text: string, zone: DateTime.TimeZone): Option.Option<number> => {
  const match = localDateTimePattern.exec(text.trim())
  if (match === null) return Option.none()
  const [, year, month, day, hours, minutes, seconds, fraction] = match
  const parts = {
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hours: Number(hours),
    minutes: Number(minutes),
    seconds: Number(seconds),
    millis: fraction === undefined ? 0 : Number(fraction.padEnd(3, "0").slice(0, 3))
  }
  if (
    parts.month < 1 || parts.month > 12 || parts.day < 1 || parts.day > 31 || parts.hours > 23 ||
    parts.minutes > 59 || parts.seconds > 60
  ) return Option.none()
  return DateTime.makeZoned(parts, { timeZone: zone, adjustForTimeZone: true, disambiguation: "earlier" }).pipe(
    // `Date` rolls 31 February over into March: refuse dates that do not exist
    Option.filter((dt) => {
      const back = DateTime.toParts(dt)
      return back.day === parts.day && back.month === parts.month
    }),
    Option.map(DateTime.toEpochMillis)
  )
}

const rfc3339Pattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i

/** Parses an RFC 3339 timestamp that carries its offset (`Z` or `±hh:mm`) into epoch milliseconds. @internal */
export const parseRfc3339 = (text: string): Option.Option<number> =>
  rfc3339Pattern.test(text.trim())
    ? Option.map(DateTime.make(text.trim()), DateTime.toEpochMillis)
    : Option.none()

/**
 * The time zone `expiresOn` is read in: the `DateTime.CurrentTimeZone` service when provided, else the local zone of
 * the process.
 *
 * @internal
 */
export const localZone: Effect.Effect<DateTime.TimeZone> = Effect.map(
  Effect.serviceOption(DateTime.CurrentTimeZone),
  Option.getOrElse(() => DateTime.zoneMakeLocal())
)

/**
 * Response bodies shaped like the real services': Entra's OAuth error body (with AADSTS codes, trace and
 * correlation ids and a timestamp) and the managed-identity hosts' answers.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { randomUuid } from "../ids.js"

/** An Entra error: HTTP status, OAuth `error`, AADSTS code and text. @internal */
export interface EntraError {
  readonly status: number
  readonly error: string
  readonly code: number
  readonly description: string
}

/** @internal */
export const entraError = (status: number, error: string, code: number, description: string): EntraError => ({
  status,
  error,
  code,
  description
})

const pad = (n: number) => String(n).padStart(2, "0")

/** `YYYY-MM-DD hh:mm:ssZ`, the form Entra uses in `timestamp`. @internal */
export const entraTimestamp = (millis: number): string => {
  const d = new Date(millis)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${
    pad(d.getUTCMinutes())
  }:${pad(d.getUTCSeconds())}Z`
}

/** `MM/DD/YYYY HH:MM:SS +00:00`: how App Service's 2017 API writes `expires_on`. @internal */
export const appService2017Date = (millis: number): string => {
  const d = new Date(millis)
  return `${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${
    pad(d.getUTCMinutes())
  }:${pad(d.getUTCSeconds())} +00:00`
}

/**
 * The JSON body Entra answers errors with. The correlation id echoes the client's `client-request-id` when it sent
 * one, as Entra does.
 *
 * @internal
 */
export const entraErrorBody = (
  e: EntraError,
  options: { readonly correlationId: string | undefined; readonly baseUrl: string }
): Effect.Effect<Record<string, unknown>> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const traceId = yield* randomUuid
    const correlationId = options.correlationId !== undefined && /^[0-9a-fA-F-]{36}$/.test(options.correlationId)
      ? options.correlationId
      : yield* randomUuid
    const timestamp = entraTimestamp(now)
    return {
      error: e.error,
      error_description: `AADSTS${e.code}: ${e.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ` +
        `${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [e.code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${options.baseUrl}/error?code=${e.code}`
    }
  })

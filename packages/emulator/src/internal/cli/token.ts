/**
 * `token`: gets a token and prints who produced it, its expiry and its claims. Loaded only when the command runs.
 *
 * @internal
 */
import type { AccessToken } from "effect-azure-identity/AccessToken"
import * as DefaultAzureCredential from "effect-azure-identity/DefaultAzureCredential"
import type { IdentityError } from "effect-azure-identity/IdentityError"
import { isIdentityError } from "effect-azure-identity/IdentityError"
import * as TokenCredential from "effect-azure-identity/TokenCredential"
import * as Console from "effect/Console"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { CredentialChoice } from "./choices.js"
import type { NodeServices } from "./credentials.js"
import { credentialLayer, noteProducer, Producer } from "./credentials.js"
import { Reported } from "./reported.js"

/** @internal */
export const reportIdentityError = (error: IdentityError) =>
  Effect.zipRight(Console.error(`error: ${error.message}`), Effect.fail(new Reported({ exitCode: 1 })))

/** The claims of a JWT, unverified; `undefined` when the token is not a JWT. @internal */
export const decodeClaims = (token: string): Record<string, unknown> | undefined => {
  const parts = token.split(".")
  if (parts.length !== 3) return undefined
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"))
    return typeof claims === "object" && claims !== null && !Array.isArray(claims) ? claims : undefined
  } catch {
    return undefined
  }
}

const timeClaims = new Set(["iat", "nbf", "exp", "auth_time"])

const formatClaim = (key: string, value: unknown): string => {
  if (timeClaims.has(key) && typeof value === "number") {
    // a time beyond any date (the token is someone else's input) is shown as the number alone
    const date = new Date(value * 1000)
    return Number.isNaN(date.getTime()) ? String(value) : `${value} (${date.toISOString()})`
  }
  return typeof value === "string" ? value : JSON.stringify(value)
}

const inMinutes = (now: number, at: DateTime.Utc) => {
  const minutes = Math.round((at.epochMillis - now) / 60_000)
  return minutes >= 0 ? `in ${minutes} min` : `${-minutes} min ago`
}

/** The parsed options of `token`. @internal */
export interface TokenArgs {
  readonly scope: string
  readonly tenant: Option.Option<string>
  readonly credential: CredentialChoice
  readonly json: boolean
  readonly showToken: boolean
}

const describeToken = (
  producer: { readonly name: string; readonly source: string },
  scope: string,
  token: AccessToken,
  options: { readonly json: boolean; readonly showToken: boolean }
) =>
  Effect.gen(function*() {
    const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
    const claims = decodeClaims(Redacted.value(token.token))
    if (options.json) {
      return yield* Console.log(JSON.stringify(
        {
          credential: producer.name,
          ...(producer.source !== "" ? { source: producer.source } : {}),
          scope,
          tokenType: token.tokenType,
          expiresOn: DateTime.formatIso(token.expiresOn),
          refreshOn: Option.getOrNull(Option.map(token.refreshOn, DateTime.formatIso)),
          claims: claims ?? null,
          ...(options.showToken ? { token: Redacted.value(token.token) } : {})
        },
        null,
        2
      ))
    }
    const lines = [
      `credential: ${producer.name}`,
      ...(producer.source !== "" ? [`source:     ${producer.source}`] : []),
      `scope:      ${scope}`,
      `type:       ${token.tokenType}`,
      `expires:    ${DateTime.formatIso(token.expiresOn)} (${inMinutes(now, token.expiresOn)})`,
      ...Option.match(token.refreshOn, {
        onNone: () => [],
        onSome: (r) => [`refresh:    ${DateTime.formatIso(r)} (${inMinutes(now, r)})`]
      }),
      claims === undefined ? "claims:     (the token is not a JWT)" : "claims:",
      ...Object.entries(claims ?? {}).map(([k, v]) => `  ${k}: ${formatClaim(k, v)}`),
      ...(options.showToken ? [`token:      ${Redacted.value(token.token)}`] : [])
    ]
    yield* Console.log(lines.join("\n"))
  })

/** Runs `token`. @internal */
export const token = (args: TokenArgs): Effect.Effect<void, Reported, NodeServices> =>
  Effect.gen(function*() {
    const producer = { name: "", source: "" }
    const accessToken = yield* TokenCredential.getToken(args.scope, {
      ...(Option.isSome(args.tenant) ? { tenantId: args.tenant.value } : {})
    }).pipe(
      noteProducer(DefaultAzureCredential.name),
      Effect.provide(credentialLayer(args.credential)),
      Effect.provideService(Producer, producer),
      Effect.catchIf(isIdentityError, reportIdentityError)
    )
    const name = args.credential === "default"
      ? `${DefaultAzureCredential.name} → ${producer.name === "" ? "(link not known)" : producer.name}`
      : producer.name
    yield* describeToken({ name, source: producer.source }, args.scope, accessToken, args)
  })

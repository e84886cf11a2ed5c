/**
 * The record of a user's sign-in: which account, at which authority, for which app. It holds no secret (no token),
 * so it can be written to a file or a settings store, and handed back to a user credential after a restart
 * (`authenticationRecord` option) to pick the same account silently.
 *
 * The JSON is the one `@azure/identity` (`serializeAuthenticationRecord`) and `azure-identity` for Python
 * (`AuthenticationRecord.serialize()`) write, so records are interchangeable with them:
 * `{"authority","homeAccountId","clientId","tenantId","username","version":"1.0"}`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthenticationRecord } from "effect-azure-identity"
 *
 * const json = JSON.stringify({
 *   authority: "login.microsoftonline.com",
 *   homeAccountId: "00000000-0000-0000-0000-000000000001.72f988bf-86f1-41af-91ab-2d7cd011db47",
 *   clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
 *   tenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
 *   username: "ada@contoso.com",
 *   version: "1.0"
 * })
 *
 * const roundTrip = AuthenticationRecord.deserialize(json).pipe(Effect.map(AuthenticationRecord.serialize))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { lazy } from "./internal/lazy.js"

/**
 * The only record version the peers write and read.
 *
 * @since 0.1.0
 * @category constants
 */
export const version = "1.0"

/**
 * A sign-in record. Field names and meaning as in the peers:
 *
 * - `authority`: the authority host without scheme, e.g. `login.microsoftonline.com` (`127.0.0.1:8400` for a local
 *   emulator);
 * - `homeAccountId`: `<object id>.<home tenant id>` of the user (from `client_info`);
 * - `clientId`: the app the user signed in to;
 * - `tenantId`: the tenant of the sign-in;
 * - `username`: the user's sign-in name (`preferred_username`);
 * - `version`: `"1.0"`.
 *
 * @since 0.1.0
 * @category schemas
 */
export class AuthenticationRecord
  extends Schema.Class<AuthenticationRecord>("effect-azure-identity/AuthenticationRecord")({
    authority: Schema.String.pipe(Schema.minLength(1)),
    homeAccountId: Schema.String.pipe(Schema.minLength(1)),
    clientId: Schema.String.pipe(Schema.minLength(1)),
    tenantId: Schema.String.pipe(Schema.minLength(1)),
    username: Schema.String,
    version: Schema.Literal(version)
  })
{}

/**
 * The record's JSON text, as the peers write it (compact `JSON.stringify`, the field order of `@azure/identity`).
 *
 * @since 0.1.0
 * @category serialization
 */
export const serialize = (record: AuthenticationRecord): string =>
  JSON.stringify({
    authority: record.authority,
    homeAccountId: record.homeAccountId,
    tenantId: record.tenantId,
    username: record.username,
    clientId: record.clientId,
    version: record.version
  })

/**
 * A record that could not be read.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationRecordError extends Schema.TaggedError<AuthenticationRecordError>(
  "effect-azure-identity/AuthenticationRecordError"
)("AuthenticationRecordError", { reason: Schema.String }) {
  override get message(): string {
    return `the authentication record cannot be used: ${this.reason}`
  }
}

// built on first use (see internal/lazy.ts)
const decodeJson = lazy(() => Schema.decodeUnknownEither(Schema.parseJson(Schema.Unknown)))
const decodeRecord = lazy(() => Schema.decodeUnknownEither(AuthenticationRecord))

/**
 * Reads a record from the JSON written by `serialize`, `@azure/identity` or `azure-identity` for Python (any field
 * order, any whitespace). A version other than `"1.0"`, a missing field, or text that is not JSON is an
 * `AuthenticationRecordError` that names the problem (never the field values).
 *
 * @since 0.1.0
 * @category serialization
 */
export const deserialize = (json: string): Effect.Effect<AuthenticationRecord, AuthenticationRecordError> =>
  Effect.suspend(() => {
    const parsed = decodeJson()(json)
    if (Either.isLeft(parsed)) {
      return Effect.fail(new AuthenticationRecordError({ reason: "the text is not JSON" }))
    }
    const value = parsed.right
    if (typeof value === "object" && value !== null && "version" in value && value.version !== version) {
      return Effect.fail(
        new AuthenticationRecordError({
          reason: `version ${JSON.stringify(value.version)} is not supported (only "${version}"): sign in again ` +
            "with authenticate() to get a new record"
        })
      )
    }
    const record = decodeRecord()(value)
    if (Either.isLeft(record)) {
      const issues = ParseResult.ArrayFormatter.formatErrorSync(record.left)
      const fields = [...new Set(issues.map((i) => i.path.length === 0 ? "the record" : i.path.map(String).join(".")))]
      return Effect.fail(
        new AuthenticationRecordError({
          reason: `missing or invalid ${fields.join(", ")}: pass a record written by authenticate() (or by ` +
            "@azure/identity / azure-identity)"
        })
      )
    }
    return Effect.succeed(record.right)
  })

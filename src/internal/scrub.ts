/**
 * Making text from outside (a server's error body or HTML title, a tool's stderr) safe to put into an error, a log
 * line or a span: every secret the credential holds is removed in each spelling a server may echo it in, anything
 * that looks like a token is redacted, control characters go and the length is bounded.
 *
 * One mechanism for every credential: the Entra token client (`aad.ts`), the managed-identity sources and the
 * developer tools (`az`, `azd`) all go through `sanitize`.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { ClientAuthenticationError, CredentialUnavailableError } from "../IdentityError.js"

/** What replaces a secret or a token. @internal */
export const placeholder = "<redacted>"

/** The default bound on the length of server text kept in an error. @internal */
export const defaultMaxLength = 2000

/** Secrets shorter than this are not searched for: replacing every `a` would make messages unreadable. @internal */
export const minSecretLength = 4

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const htmlEscape = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")

/**
 * The spellings of a secret a server may echo: raw, `encodeURIComponent`, `application/x-www-form-urlencoded`
 * (`+` for spaces, `URLSearchParams`), JSON-string escaped and HTML escaped. Percent-encodings are matched without
 * regard to case (`%2f` and `%2F`).
 *
 * @internal
 */
export const spellings = (secret: string): ReadonlyArray<string> => {
  const out = new Set<string>([secret])
  const add = (f: () => string) => {
    try {
      out.add(f())
    } catch {
      // a lone surrogate cannot be percent-encoded: the raw spelling stays
    }
  }
  add(() => encodeURIComponent(secret))
  add(() => new URLSearchParams({ x: secret }).toString().slice(2))
  add(() => encodeURIComponent(secret).replace(/%20/g, "+"))
  add(() => encodeURI(secret))
  add(() => JSON.stringify(secret).slice(1, -1))
  add(() => htmlEscape(secret))
  add(() => htmlEscape(secret).replace(/&#39;/g, "'"))
  add(() => htmlEscape(secret).replace(/&#39;/g, "&#x27;").replace(/&quot;/g, "&#34;"))
  return [...out].filter((s) => s.length >= minSecretLength)
}

/**
 * A function removing every spelling of `secrets` (plain strings or `Redacted`) from a text. Longer spellings are
 * replaced first, so a secret containing another one is removed whole.
 *
 * @internal
 */
export const secretRemover = (
  secrets: Iterable<string | Redacted.Redacted<string> | undefined>
): (text: string) => string => {
  const all = new Set<string>()
  for (const s of secrets) {
    if (s === undefined) continue
    const value = Redacted.isRedacted(s) ? Redacted.value(s) : s
    if (typeof value !== "string" || value.length < minSecretLength) continue
    for (const spelling of spellings(value)) all.add(spelling)
    // the secret as it would read once control characters are stripped
    const stripped = value.replace(controlPattern, "")
    if (stripped !== value) { for (const spelling of spellings(stripped)) all.add(spelling) }
  }
  if (all.size === 0) return (text) => text
  const pattern = new RegExp(
    [...all].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|"),
    "gi"
  )
  return (text) => text.replace(pattern, placeholder)
}

/** ANSI escape sequences and C0/C1 control characters (tabs and newlines included). @internal */
export const controlPattern = /\u001b\[[0-9;?]*[A-Za-z]|[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g

const jwtPattern = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?/g

const bearerPattern = /\b(Bearer|Basic|PoP|SharedAccessSignature)(\s+)[A-Za-z0-9._~+/=%:-]{4,}/gi

const secretFieldNames = [
  "access_?token",
  "refresh_?token",
  "id_?token",
  "token",
  "client_?secret",
  "secret",
  "password",
  "passwd",
  "pwd",
  "client_?assertion",
  "assertion",
  "code_?verifier",
  "device_?code"
].join("|")

/** `name=value`, `name: value`, `"name": "value"` for the field names that carry secrets (either case, any `_`). */
const fieldPattern = new RegExp(
  `((?:^|[^A-Za-z0-9_])"?(?:${secretFieldNames})"?\\s*[:=]\\s*)("(?:[^"\\\\]|\\\\.)*"|'[^']*'|[^\\s,;&}"'<]+)`,
  "gi"
)

/**
 * Redacts what looks like a credential whatever the credential holds: JWTs, `Bearer …` (and `Basic`, `PoP`, SAS)
 * values, and the values of fields named like secrets (`client_secret=`, `"password": …`, `refresh_token=`, …).
 *
 * @internal
 */
export const redactPatterns = (text: string): string =>
  text
    .replace(fieldPattern, (_, field: string) => `${field}${placeholder}`)
    .replace(bearerPattern, (_, scheme: string, space: string) => `${scheme}${space}${placeholder}`)
    .replace(jwtPattern, placeholder)

/** Clips to `maxLength` characters, marking the cut with `…`. @internal */
export const clip = (text: string, maxLength: number): string =>
  text.length > maxLength ? `${text.slice(0, maxLength)}…` : text

/**
 * Text from outside made safe for an error: secrets removed (before and after control characters are stripped, so
 * an inserted control character cannot hide one), token-like values redacted, whitespace collapsed to one line,
 * length bounded.
 *
 * @internal
 */
export const sanitize = (
  text: string,
  options: {
    readonly remove?: ((text: string) => string) | undefined
    readonly maxLength?: number | undefined
  } = {}
): string => {
  const remove = options.remove ?? ((t: string) => t)
  const once = remove(text)
  const cleaned = remove(
    once.replace(/[\t\n\r\f\v\u2028\u2029]+/g, " ").replace(controlPattern, "").replace(/\s+/g, " ").trim()
  )
  return clip(redactPatterns(cleaned), options.maxLength ?? defaultMaxLength)
}

/**
 * A response with every secret removed from its body and header values, before anything is read from it (an OAuth
 * error field, an HTML title, a content type): a clipped echo then cannot leave a piece of a secret behind.
 *
 * @internal
 */
export const scrubResponse = <R extends { readonly headers: Readonly<Record<string, string>>; readonly text: string }>(
  response: R,
  remove: (text: string) => string
): R => ({
  ...response,
  headers: Object.fromEntries(
    Object.entries(response.headers).map(([k, v]) => [k, sanitize(v, { remove, maxLength: 200 })])
  ),
  text: remove(response.text)
})

/**
 * The error with every text field made safe: secrets removed, control characters stripped, length bounded. The
 * last line of defence where server text becomes an error (it is scrubbed before it is read, too).
 *
 * @internal
 */
export const scrubError = <E extends ClientAuthenticationError | CredentialUnavailableError>(
  error: E,
  remove: (text: string) => string
): E => {
  const clean = (text: string, maxLength = defaultMaxLength * 2) => sanitize(text, { remove, maxLength })
  const optional = (text: string | undefined, maxLength?: number) =>
    text === undefined ? undefined : clean(text, maxLength)
  if (error._tag === "CredentialUnavailableError") {
    return new CredentialUnavailableError({
      credential: error.credential,
      reason: clean(error.reason),
      code: error.code
    }) as E
  }
  const e = error as ClientAuthenticationError
  const fields = {
    error: optional(e.error, 200),
    errorDescription: optional(e.errorDescription, defaultMaxLength),
    correlationId: optional(e.correlationId, 200),
    traceId: optional(e.traceId, 200),
    timestamp: optional(e.timestamp, 200),
    // a claims challenge is passed back verbatim: secrets removed, otherwise untouched
    claims: e.claims === undefined ? undefined : remove(e.claims)
  }
  return new ClientAuthenticationError({
    credential: e.credential,
    reason: clean(e.reason),
    code: e.code,
    ...(e.status !== undefined ? { status: e.status } : {}),
    ...(e.errorCodes !== undefined ? { errorCodes: e.errorCodes } : {}),
    ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined))
  }) as E
}

/** Matches every header name. */
const everyHeader = /^/

/**
 * Runs `self` with every request and response header value redacted in the HTTP client's spans: a server can echo
 * the request into any response header, and the platform records response headers as span attributes.
 *
 * @internal
 */
export const withAllHeadersRedacted = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locallyWith(self, Headers.currentRedactedNames, withEveryHeader)

/** The names with `everyHeader` added: one array per list of names (the fiber's list rarely changes). */
const withEveryHeader = (names: ReadonlyArray<string | RegExp>): ReadonlyArray<string | RegExp> => {
  let extended = everyHeaderAdded.get(names)
  if (extended === undefined) {
    extended = [...names, everyHeader]
    everyHeaderAdded.set(names, extended)
  }
  return extended
}
const everyHeaderAdded = new WeakMap<ReadonlyArray<string | RegExp>, ReadonlyArray<string | RegExp>>()

/**
 * Picks a credential from `AZURE_*` environment variables (read through `Config`), first match wins:
 *
 * 1. `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` → `ClientSecretCredential`;
 * 2. `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_CERTIFICATE_PATH` → `CertificateCredential`, with
 *    `AZURE_CLIENT_CERTIFICATE_PASSWORD` and `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` (`true` or `1`, any case);
 * 3. `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_USERNAME` + `AZURE_PASSWORD` → `UsernamePasswordCredential`
 *    (deprecated by Microsoft, no MFA: a last resort).
 *
 * An empty variable counts as unset. The chosen credential also reads `AZURE_AUTHORITY_HOST` and
 * `AZURE_ADDITIONALLY_ALLOWED_TENANTS` unless the options give them. The variables are read once, when the layer is
 * built.
 *
 * In a chain: when no case matches, `getToken` fails with `CredentialUnavailableError` listing which of the variables
 * are set and which are missing (names only, never values), and the chain moves on. Once a case matches, the inner
 * credential's errors are reported as `EnvironmentCredential`'s, with the inner credential named in the reason: a
 * secret or certificate the authority rejects is `ClientAuthenticationError` and stops the chain.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { EnvironmentCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = EnvironmentCredential.layer().pipe(Layer.provide(IdentityNode.layer))
 *
 * TokenCredential.getToken("https://vault.azure.net/.default").pipe(Effect.provide(CredentialLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as CertificateCredential from "./CertificateCredential.js"
import * as ClientSecretCredential from "./ClientSecretCredential.js"
import type { IdentityError } from "./IdentityError.js"
import {
  AuthenticationRequiredError,
  ChainedAuthenticationError,
  ClientAuthenticationError,
  CredentialUnavailableError
} from "./IdentityError.js"
import * as Peek from "./internal/peek.js"
import * as Spans from "./internal/spans.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"
import * as UsernamePasswordCredential from "./UsernamePasswordCredential.js"

/**
 * The credential's name, `"EnvironmentCredential"`: the `name` of its service and the `credential` of its errors (and
 * of the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "EnvironmentCredential"

/**
 * The variables this credential reads to pick a credential, in the order they are listed in messages.
 *
 * @since 0.1.0
 * @category config
 */
export const variables = [
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "AZURE_CLIENT_CERTIFICATE_PATH",
  "AZURE_CLIENT_CERTIFICATE_PASSWORD",
  "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
  "AZURE_USERNAME",
  "AZURE_PASSWORD"
] as const

/**
 * The name of one environment variable this credential reads (one of {@link variables}).
 *
 * @since 0.1.0
 * @category config
 */
export type Variable = typeof variables[number]

/**
 * The options of `make` and `layer`, all optional: the credential itself comes from the environment variables ({@link
 * variables}); these only set what the variables do not (authority, allowed tenants, retries).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides the configured one. Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
}

/**
 * The variables as read: `undefined` when unset or empty.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly tenantId: string | undefined
  readonly clientId: string | undefined
  readonly clientSecret: Redacted.Redacted<string> | undefined
  readonly certificatePath: string | undefined
  readonly certificatePassword: Redacted.Redacted<string> | undefined
  readonly sendCertificateChain: string | undefined
  readonly username: string | undefined
  readonly password: Redacted.Redacted<string> | undefined
}

const nonEmpty = (key: string): Config.Config<string | undefined> =>
  Config.option(Config.string(key)).pipe(
    Config.map((o) => Option.getOrUndefined(Option.filter(o, (s) => s.trim() !== ""))),
    Config.orElse(() => Config.succeed(undefined))
  )

const nonEmptyRedacted = (key: string): Config.Config<Redacted.Redacted<string> | undefined> =>
  Config.option(Config.redacted(key)).pipe(
    Config.map((o) => Option.getOrUndefined(Option.filter(o, (s) => Redacted.value(s).trim() !== ""))),
    Config.orElse(() => Config.succeed(undefined))
  )

/**
 * Reads the variables through `Config` (never `process.env`); empty values count as unset.
 *
 * @since 0.1.0
 * @category config
 */
export const settings: Config.Config<Settings> = Config.all({
  tenantId: nonEmpty("AZURE_TENANT_ID"),
  clientId: nonEmpty("AZURE_CLIENT_ID"),
  clientSecret: nonEmptyRedacted("AZURE_CLIENT_SECRET"),
  certificatePath: nonEmpty("AZURE_CLIENT_CERTIFICATE_PATH"),
  certificatePassword: nonEmptyRedacted("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
  sendCertificateChain: nonEmpty("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"),
  username: nonEmpty("AZURE_USERNAME"),
  password: nonEmptyRedacted("AZURE_PASSWORD")
})

/**
 * Which of the variables are set (names only).
 *
 * @since 0.1.0
 * @category config
 */
export const setVariables = (s: Settings): ReadonlyArray<Variable> => {
  const values: Record<Variable, unknown> = {
    AZURE_TENANT_ID: s.tenantId,
    AZURE_CLIENT_ID: s.clientId,
    AZURE_CLIENT_SECRET: s.clientSecret,
    AZURE_CLIENT_CERTIFICATE_PATH: s.certificatePath,
    AZURE_CLIENT_CERTIFICATE_PASSWORD: s.certificatePassword,
    AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: s.sendCertificateChain,
    AZURE_USERNAME: s.username,
    AZURE_PASSWORD: s.password
  }
  return variables.filter((v) => values[v] !== undefined)
}

/**
 * What the variables select.
 *
 * @since 0.1.0
 * @category models
 */
export type Selection =
  | {
    readonly _tag: "ClientSecret"
    readonly tenantId: string
    readonly clientId: string
    readonly clientSecret: Redacted.Redacted<string>
  }
  | {
    readonly _tag: "Certificate"
    readonly tenantId: string
    readonly clientId: string
    readonly certificatePath: string
    readonly certificatePassword: Redacted.Redacted<string> | undefined
    readonly sendCertificateChain: boolean
  }
  | {
    readonly _tag: "UsernamePassword"
    readonly tenantId: string
    readonly clientId: string
    readonly username: string
    readonly password: Redacted.Redacted<string>
  }
  | { readonly _tag: "None"; readonly reason: string }

const cases: ReadonlyArray<{ readonly label: string; readonly needs: ReadonlyArray<Variable> }> = [
  { label: "a client secret", needs: ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"] },
  { label: "a certificate", needs: ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_CERTIFICATE_PATH"] },
  {
    label: "a username and password",
    needs: ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_USERNAME", "AZURE_PASSWORD"]
  }
]

const listNames = (names: ReadonlyArray<string>): string =>
  names.length <= 1
    ? names.join("")
    : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`

/**
 * The precedence of the variables (first match wins), or why nothing matched: which variables are set, and which
 * are missing for the configuration closest to complete.
 *
 * @since 0.1.0
 * @category config
 */
export const select = (s: Settings): Selection => {
  if (s.tenantId !== undefined && s.clientId !== undefined) {
    if (s.clientSecret !== undefined) {
      return { _tag: "ClientSecret", tenantId: s.tenantId, clientId: s.clientId, clientSecret: s.clientSecret }
    }
    if (s.certificatePath !== undefined) {
      const flag = s.sendCertificateChain?.trim().toLowerCase()
      return {
        _tag: "Certificate",
        tenantId: s.tenantId,
        clientId: s.clientId,
        certificatePath: s.certificatePath,
        certificatePassword: s.certificatePassword,
        sendCertificateChain: flag === "true" || flag === "1"
      }
    }
    if (s.username !== undefined && s.password !== undefined) {
      return {
        _tag: "UsernamePassword",
        tenantId: s.tenantId,
        clientId: s.clientId,
        username: s.username,
        password: s.password
      }
    }
  }
  const set = setVariables(s)
  const setSet = new Set<string>(set)
  // the configuration closest to complete: fewest missing, then most of its variables set, then the earlier one
  const closest = cases
    .map((c) => ({ ...c, missing: c.needs.filter((v) => !setSet.has(v)) }))
    .reduce((best, c) =>
      c.missing.length < best.missing.length ||
        (c.missing.length === best.missing.length && c.needs.length > best.needs.length)
        ? c
        : best
    )
  const required = "set AZURE_TENANT_ID, AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET, " +
    "AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_USERNAME and AZURE_PASSWORD"
  const reason = set.length === 0
    ? `none of the AZURE_* variables it reads is set: ${required}`
    : `the environment is not fully configured: ${listNames(set)} ${set.length === 1 ? "is" : "are"} set; ` +
      `for ${closest.label}, ${listNames(closest.missing)} ${
        closest.missing.length === 1 ? "is" : "are"
      } missing (${required})`
  return { _tag: "None", reason }
}

const sourceOf = (selection: Selection): string =>
  selection._tag === "ClientSecret"
    ? "AZURE_CLIENT_SECRET"
    : selection._tag === "Certificate"
    ? "AZURE_CLIENT_CERTIFICATE_PATH"
    : "AZURE_USERNAME and AZURE_PASSWORD"

/** An inner credential's error as EnvironmentCredential's, same kind, the inner credential named in the reason. */
const rename = (source: string) => (error: IdentityError): IdentityError => {
  const prefix = (credential: string, reason: string) => `${credential} (from ${source}): ${reason}`
  switch (error._tag) {
    case "CredentialUnavailableError":
      return new CredentialUnavailableError({
        credential: name,
        reason: prefix(error.credential, error.reason),
        code: error.code
      })
    case "AuthenticationRequiredError":
      return new AuthenticationRequiredError({
        ...error,
        credential: name,
        reason: prefix(error.credential, error.reason)
      })
    case "ClientAuthenticationError":
      return new ClientAuthenticationError({
        ...error,
        credential: name,
        reason: prefix(error.credential, error.reason)
      })
    case "ChainedAuthenticationError":
      return new ChainedAuthenticationError({ ...error, credential: name })
  }
}

/**
 * Builds the credential's `TokenCredential` service in the current scope, which its token cache lives in: for composing
 * services by hand (most programs use `layer`). Needs `HttpClient` and `FileSystem`; it never fails: a problem with the
 * options surfaces from `getToken`. The `FileSystem` reads `AZURE_CLIENT_CERTIFICATE_PATH`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    // every variable is read with a fallback, so reading cannot fail; an unreadable source counts as unset
    const read = yield* Effect.orElseSucceed(settings, (): Settings => ({
      tenantId: undefined,
      clientId: undefined,
      clientSecret: undefined,
      certificatePath: undefined,
      certificatePassword: undefined,
      sendCertificateChain: undefined,
      username: undefined,
      password: undefined
    }))
    const selection = select(read)
    yield* Effect.logDebug(
      `${name}: variables set: ${setVariables(read).join(", ") || "none"}; using ${
        selection._tag === "None" ? "nothing" : selection._tag
      }`
    )
    const common = {
      authorityHost: options.authorityHost,
      additionallyAllowedTenants: options.additionallyAllowedTenants,
      retryPolicy: options.retryPolicy
    }
    let inner: TokenCredential.Service
    switch (selection._tag) {
      case "None":
        return TokenCredential.make(
          name,
          () =>
            Effect.fail(
              new CredentialUnavailableError({ credential: name, reason: selection.reason, code: "not-configured" })
            )
        )
      case "ClientSecret":
        inner = yield* ClientSecretCredential.make({ ...common, ...selection })
        break
      case "Certificate":
        inner = yield* CertificateCredential.make({
          ...common,
          tenantId: selection.tenantId,
          clientId: selection.clientId,
          certificatePath: selection.certificatePath,
          certificatePassword: selection.certificatePassword,
          sendCertificateChain: selection.sendCertificateChain
        })
        break
      case "UsernamePassword":
        inner = yield* UsernamePasswordCredential.make({
          ...common,
          tenantId: selection.tenantId,
          clientId: selection.clientId,
          username: selection.username,
          password: selection.password
        })
        break
    }
    const wrap = rename(sourceOf(selection))
    const service = TokenCredential.make(
      name,
      (scopes, getTokenOptions) =>
        inner.getToken(scopes, getTokenOptions).pipe(
          Effect.mapError(wrap),
          Effect.withSpan(`${name}.getToken`, {
            attributes: Spans.attributes(name, scopes, { inner: inner.name })
          })
        )
    )
    // a fresh cached token of the inner credential is this one's too (only errors are renamed)
    const peek = Peek.of(inner)
    return peek === undefined ? service : Peek.register(service, peek)
  }).pipe(Effect.annotateLogs("module", name))

/**
 * Reads the `AZURE_*` variables when built. Never fails to build: when they select nothing, `getToken` fails with
 * `CredentialUnavailableError` naming what is set and what is missing.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

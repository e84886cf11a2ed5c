/**
 * Interoperability with the Azure SDK for JavaScript (`@azure/*` clients and `@azure/identity`).
 *
 * - `toTokenCredential(layer | runtime)` turns a credential of this library into an `@azure/core-auth`
 *   `TokenCredential`, so any Azure SDK client (`SecretClient`, `BlobServiceClient`, …) can use it. Given a layer,
 *   the layer is built once, on the first `getToken`, and kept until `close()`: the token cache lives as long as
 *   the credential object.
 * - `fromTokenCredential(credential)` turns any `@azure/identity` credential into a layer providing this library's
 *   `TokenCredential`.
 * - `createCredential(layer?)`: a Promise-based credential for code that does not use Effect at all;
 *   `DefaultAzureCredential` on Node.js unless a layer is given.
 *
 * Errors cross the boundary by `name`, as the Azure SDK matches them (never by `instanceof`):
 *
 * | this library | Azure SDK `name` |
 * | --- | --- |
 * | `CredentialUnavailableError` | `CredentialUnavailableError` |
 * | `ClientAuthenticationError` | `AuthenticationError` (with `statusCode` and `errorResponse`) |
 * | `AuthenticationRequiredError` | `AuthenticationRequiredError` |
 * | `ChainedAuthenticationError` | `AggregateAuthenticationError` (with `errors`) |
 *
 * `getToken` honours `abortSignal` (aborting interrupts the fiber and rejects at once with an `AbortError`),
 * `tenantId`, `claims` and `enableCae`.
 *
 * This module only needs the *types* of `@azure/core-auth` (an optional peer dependency): nothing from the Azure SDK
 * is loaded at run time.
 *
 * @example
 * ```ts
 * import { SecretClient } from "@azure/keyvault-secrets"
 * import { Layer } from "effect"
 * import { AzureSdk, ClientSecretCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const credential = AzureSdk.toTokenCredential(
 *   ClientSecretCredential.layerConfig().pipe(Layer.provide(IdentityNode.layer))
 * )
 * const client = new SecretClient("https://my-vault.vault.azure.net", credential)
 * const secret = await client.getSecret("db-password")
 * await credential.close()
 * ```
 *
 * @since 0.1.0
 */
import type * as CoreAuth from "@azure/core-auth"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as AccessToken from "./AccessToken.js"
import * as DefaultAzureCredential from "./DefaultAzureCredential.js"
import type { IdentityError, LinkError } from "./IdentityError.js"
import {
  AuthenticationRequiredError,
  ChainedAuthenticationError,
  ClientAuthenticationError,
  CredentialUnavailableError,
  isIdentityError
} from "./IdentityError.js"
import * as Token from "./internal/accessToken.js"
import * as BearerTokenProvider from "./internal/bearerTokenProvider.js"
import * as Peek from "./internal/peek.js"
import * as Spans from "./internal/spans.js"
import * as TokenCredential from "./TokenCredential.js"

// -----------------------------------------------------------------------------
// Errors, as the Azure SDK names them
// -----------------------------------------------------------------------------

/**
 * The `name`s the Azure SDK for JavaScript gives its credential errors.
 *
 * @since 0.1.0
 * @category errors
 */
export type AzureErrorName =
  | "CredentialUnavailableError"
  | "AuthenticationError"
  | "AuthenticationRequiredError"
  | "AggregateAuthenticationError"

/**
 * An `Error` shaped like the Azure SDK's credential errors. `cause` is this library's typed error.
 *
 * @since 0.1.0
 * @category errors
 */
export interface AzureError extends Error {
  readonly name: AzureErrorName
  /** `AuthenticationError` only: the HTTP status of the authority's answer (400 when there was none). */
  readonly statusCode?: number
  /** `AuthenticationError` only: the fields of Entra's error body. */
  readonly errorResponse?: {
    readonly error: string
    readonly errorDescription: string
    readonly errorCodes?: ReadonlyArray<number>
    readonly correlationId?: string
    readonly traceId?: string
    readonly timestamp?: string
  }
  /** `AuthenticationRequiredError` only. */
  readonly scopes?: ReadonlyArray<string>
  /** `AuthenticationRequiredError` only: the options to pass to `getToken` after signing in. */
  readonly getTokenOptions?: { readonly claims?: string }
  /** `AggregateAuthenticationError` only: each link's error, in chain order. */
  readonly errors?: ReadonlyArray<AzureError>
}

const makeAzureError = (name: AzureErrorName, message: string, cause: unknown, fields: object = {}): AzureError => {
  const error = new Error(message, { cause }) as Error & Record<string, unknown>
  Object.defineProperty(error, "name", { value: name, enumerable: false, writable: true, configurable: true })
  return Object.assign(error, fields) as unknown as AzureError
}

/**
 * Turns one of this library's errors into the `Error` the Azure SDK expects (matched by `name`). The message is the
 * typed error's message; nothing else (no secret, no token, no request) is attached besides the typed error as
 * `cause`.
 *
 * @since 0.1.0
 * @category errors
 */
export const toAzureError = (error: IdentityError): AzureError => {
  switch (error._tag) {
    case "CredentialUnavailableError":
      return makeAzureError("CredentialUnavailableError", error.message, error)
    case "AuthenticationRequiredError":
      return makeAzureError("AuthenticationRequiredError", error.message, error, {
        scopes: [...error.scopes],
        getTokenOptions: error.claims === undefined ? {} : { claims: error.claims }
      })
    case "ClientAuthenticationError":
      return makeAzureError("AuthenticationError", error.message, error, {
        statusCode: error.status ?? 400,
        errorResponse: {
          error: error.error ?? "authentication_failed",
          errorDescription: error.errorDescription ?? error.reason,
          ...(error.errorCodes === undefined ? {} : { errorCodes: [...error.errorCodes] }),
          ...(error.correlationId === undefined ? {} : { correlationId: error.correlationId }),
          ...(error.traceId === undefined ? {} : { traceId: error.traceId }),
          ...(error.timestamp === undefined ? {} : { timestamp: error.timestamp })
        }
      })
    case "ChainedAuthenticationError":
      return makeAzureError("AggregateAuthenticationError", error.message, error, {
        errors: error.errors.map(toAzureError)
      })
  }
}

const abortError = (): Error => {
  const error = new Error("The operation was aborted.")
  Object.defineProperty(error, "name", { value: "AbortError", enumerable: false, writable: true, configurable: true })
  return error
}

const describeUnknown = (u: unknown): string => {
  if (u instanceof Error) return `${u.name}: ${u.message}`
  if (typeof u === "object" && u !== null && "message" in u && typeof u.message === "string") return u.message
  return "an unexpected error"
}

// -----------------------------------------------------------------------------
// toTokenCredential
// -----------------------------------------------------------------------------

/**
 * An `@azure/core-auth` `TokenCredential` backed by an Effect credential. `getToken` never resolves to `null`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AzureTokenCredential extends CoreAuth.TokenCredential {
  getToken(scopes: string | Array<string>, options?: CoreAuth.GetTokenOptions): Promise<CoreAuth.AccessToken>
}

/**
 * A credential that owns the layer it was made from: `close()` releases it (stops background refreshes, drops the
 * token cache). Calls in flight when it closes reject with a `CredentialUnavailableError`; later calls too.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClosableTokenCredential extends AzureTokenCredential {
  readonly close: () => Promise<void>
}

/**
 * Converts an `AccessToken` to the Azure SDK shape (epoch milliseconds).
 *
 * @since 0.1.0
 * @category conversions
 */
export const toAzureAccessToken = (token: AccessToken.AccessToken): CoreAuth.AccessToken => {
  // the milliseconds as kept (nothing built for a token of `AccessToken.make`)
  const refreshOn = Token.refreshOnMillis(token)
  return {
    token: Redacted.value(token.token),
    expiresOnTimestamp: Token.expiresOnMillis(token),
    ...(refreshOn === undefined ? {} : { refreshAfterTimestamp: refreshOn }),
    tokenType: token.tokenType.toLowerCase() === "pop" ? "pop" : "Bearer"
  }
}

const toOptions = (options: CoreAuth.GetTokenOptions | undefined): TokenCredential.GetTokenOptions => ({
  ...(options?.tenantId === undefined ? {} : { tenantId: options.tenantId }),
  ...(options?.claims === undefined ? {} : { claims: options.claims }),
  ...(options?.enableCae === undefined ? {} : { enableCae: options.enableCae })
})

type Fork = <A, E>(effect: Effect.Effect<A, E, TokenCredential.TokenCredential>) => Fiber.RuntimeFiber<A, unknown>

/**
 * Calls sharing one `AbortSignal` share one listener on it (an `EventTarget` warns past 10 listeners): the first
 * call adds it, the last one to finish removes it.
 */
type AbortSignalLike = NonNullable<CoreAuth.GetTokenOptions["abortSignal"]>

const abortWaiters = new WeakMap<AbortSignalLike, { readonly waiters: Set<() => void>; readonly fire: () => void }>()

const onAbort = (signal: AbortSignalLike, waiter: () => void): () => void => {
  let slot = abortWaiters.get(signal)
  if (slot === undefined) {
    const waiters = new Set<() => void>()
    const fire = () => {
      abortWaiters.delete(signal)
      for (const w of waiters) w()
    }
    slot = { waiters, fire }
    abortWaiters.set(signal, slot)
    signal.addEventListener("abort", fire, { once: true })
  }
  const { fire, waiters } = slot
  waiters.add(waiter)
  return () => {
    waiters.delete(waiter)
    if (waiters.size === 0 && abortWaiters.get(signal)?.waiters === waiters) {
      abortWaiters.delete(signal)
      signal.removeEventListener("abort", fire)
    }
  }
}

/** What the synchronous path needs, captured from the runtime by the first call that runs a fiber. */
interface FastPath {
  readonly peek: Peek.Peek
  readonly clock: Clock.Clock
}

/** The peek never makes `getToken` throw: input it cannot read (JavaScript callers) goes to the fiber path. */
const peekSafely = (
  fast: FastPath,
  scopes: string | Array<string>,
  options: CoreAuth.GetTokenOptions | undefined
): AccessToken.AccessToken | undefined => {
  try {
    return fast.peek(scopes, toOptions(options), fast.clock.unsafeCurrentTimeMillis())
  } catch {
    return undefined
  }
}

const makeSdkCredential = (fork: Fork, isClosed: () => boolean): {
  readonly credential: AzureTokenCredential
  readonly interruptAll: () => Promise<void>
} => {
  const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  let fast: FastPath | undefined = undefined
  // The credential service and the runtime's clock (a `TestClock` if the runtime has one), read once.
  const capture = Effect.flatMap(TokenCredential.TokenCredential, (service) => {
    const peek = Peek.of(service)
    return peek === undefined ? Effect.void : Effect.clockWith((clock) => Effect.sync(() => (fast = { peek, clock })))
  })

  const getToken = (
    scopes: string | Array<string>,
    options?: CoreAuth.GetTokenOptions
  ): Promise<CoreAuth.AccessToken> => {
    const signal = options?.abortSignal
    if (signal?.aborted === true) return Promise.reject(abortError())
    if (isClosed()) {
      return Promise.reject(toAzureError(
        new CredentialUnavailableError({ credential: "AzureSdk", reason: "the credential was closed" })
      ))
    }
    // A fresh cached token is served synchronously: no fiber, no listener, no span. Anything else (no token yet,
    // refresh due, a claims challenge, an invalid request) takes the fiber path below, which decides and reports.
    if (fast !== undefined && options?.claims === undefined) {
      const token = peekSafely(fast, scopes, options)
      if (token !== undefined) return Promise.resolve(toAzureAccessToken(token))
    }
    return new Promise<CoreAuth.AccessToken>((resolve, reject) => {
      // the fiber reports its failure to this promise: not an unhandled error to log (set in the fiber, after the
      // runtime's references are installed)
      const program = FiberRef.set(FiberRef.unhandledErrorLogLevel, Option.none()).pipe(
        Effect.zipRight(TokenCredential.getToken(scopes, toOptions(options))),
        Effect.map(toAzureAccessToken),
        Effect.withSpan("AzureSdk.getToken", {
          attributes: Spans.attributes("AzureSdk", scopes, { tenant: options?.tenantId ?? undefined })
        })
      )
      const fiber = fork(fast === undefined ? Effect.zipRight(capture, program) : program)
      running.add(fiber)
      let aborted = false
      const unsubscribe = signal === undefined ? undefined : onAbort(signal, () => {
        aborted = true
        // Reject at once; the waiting fiber is interrupted in the background. A token request of this caller alone
        // (a claims challenge) is cancelled with it; one the cache shares with other callers goes on for them.
        fiber.unsafeInterruptAsFork(FiberId.none)
        reject(abortError())
      })
      fiber.addObserver((exit) => {
        running.delete(fiber)
        unsubscribe?.()
        if (Exit.isSuccess(exit)) return resolve(exit.value)
        if (aborted) return reject(abortError())
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure)) {
          const error = failure.value
          return reject(
            isIdentityError(error)
              ? toAzureError(error)
              : toAzureError(
                new CredentialUnavailableError({
                  credential: "AzureSdk",
                  reason: `the credential layer could not be built: ${describeUnknown(error)}`
                })
              )
          )
        }
        if (Cause.isInterruptedOnly(exit.cause)) {
          return reject(toAzureError(
            new CredentialUnavailableError({
              credential: "AzureSdk",
              reason: isClosed()
                ? "the credential was closed while the request was in flight"
                : "the request was interrupted"
            })
          ))
        }
        return reject(Cause.squash(exit.cause))
      })
    })
  }
  return {
    credential: { getToken },
    interruptAll: () => {
      fast = undefined
      return Promise.all([...running].map((fiber) => Effect.runPromise(Fiber.interrupt(fiber)))).then(() => undefined)
    }
  }
}

/**
 * Wraps an Effect credential as an `@azure/core-auth` `TokenCredential` for Azure SDK clients.
 *
 * - Given a **layer** providing `TokenCredential` (with every requirement provided), the layer is built once, on
 *   the first call, into a `ManagedRuntime`: its token cache lives until `close()`.
 * - Given a **runtime** (a `Runtime` or a `ManagedRuntime` that provides `TokenCredential`), the caller owns it and
 *   disposes it; nothing is built.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toTokenCredential: {
  <E>(layer: Layer.Layer<TokenCredential.TokenCredential, E, never>): ClosableTokenCredential
  <E>(
    runtime:
      | Runtime.Runtime<TokenCredential.TokenCredential>
      | ManagedRuntime.ManagedRuntime<TokenCredential.TokenCredential, E>
  ): AzureTokenCredential
} = (
  source:
    | Layer.Layer<TokenCredential.TokenCredential, unknown, never>
    | Runtime.Runtime<TokenCredential.TokenCredential>
    | ManagedRuntime.ManagedRuntime<TokenCredential.TokenCredential, unknown>
): any => {
  if (Layer.isLayer(source)) {
    const runtime = ManagedRuntime.make(source as Layer.Layer<TokenCredential.TokenCredential, unknown, never>)
    let closed = false
    const { credential, interruptAll } = makeSdkCredential((effect) => runtime.runFork(effect), () => closed)
    let closing: Promise<void> | undefined
    const close = (): Promise<void> => {
      if (closing === undefined) {
        closed = true
        closing = interruptAll().then(() => runtime.dispose())
      }
      return closing
    }
    return { getToken: credential.getToken, close } satisfies ClosableTokenCredential
  }
  const fork: Fork = ManagedRuntime.isManagedRuntime(source)
    ? (effect) => (source as ManagedRuntime.ManagedRuntime<TokenCredential.TokenCredential, unknown>).runFork(effect)
    : (effect) => Runtime.runFork(source as Runtime.Runtime<TokenCredential.TokenCredential>)(effect)
  return makeSdkCredential(fork, () => false).credential
}

/**
 * `DefaultAzureCredential.layer()` with the Node.js services (`effect-azure-identity/node`), loaded on first use by
 * a dynamic import so that the main entry point stays free of Node-only modules.
 *
 * @since 0.1.0
 * @category layers
 */
export const defaultNodeLayer: Layer.Layer<TokenCredential.TokenCredential> = Layer.suspend(() =>
  DefaultAzureCredential.layer().pipe(
    Layer.provide(Layer.unwrapEffect(Effect.map(Effect.promise(() => import("./node.js")), (node) => node.layer)))
  )
)

/**
 * A Promise-based `TokenCredential` for code that does not use Effect. Without an argument it is
 * `DefaultAzureCredential` on Node.js (environment, workload identity, managed identity, shared cache, Azure CLI,
 * Azure Developer CLI; configured by the process environment). Given a layer (with every requirement provided), it
 * is that credential. The layer is built once, on the first `getToken`; call `close()` when done to release it.
 *
 * @example
 * ```ts
 * import { SecretClient } from "@azure/keyvault-secrets"
 * import { AzureSdk } from "effect-azure-identity"
 *
 * const credential = AzureSdk.createCredential()
 * const secrets = new SecretClient("https://my-vault.vault.azure.net", credential)
 * const secret = await secrets.getSecret("db-password")
 * // …
 * await credential.close()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createCredential = <E = never>(
  layer?: Layer.Layer<TokenCredential.TokenCredential, E, never>
): ClosableTokenCredential => toTokenCredential<E>(layer ?? defaultNodeLayer)

// -----------------------------------------------------------------------------
// fromTokenCredential
// -----------------------------------------------------------------------------

/**
 * The options of `makeFromTokenCredential` and `fromTokenCredential`: the name the wrapped credential reports.
 *
 * @since 0.1.0
 * @category models
 */
export interface FromOptions {
  /** The name errors and spans use; defaults to the credential's class name (e.g. `ClientSecretCredential`). */
  readonly name?: string | undefined
}

const nameOf = (credential: CoreAuth.TokenCredential, options?: FromOptions): string => {
  if (options?.name !== undefined && options.name !== "") return options.name
  const ctor = (credential as { constructor?: { name?: unknown } }).constructor
  return typeof ctor?.name === "string" && ctor.name !== "" && ctor.name !== "Object" ? ctor.name : "TokenCredential"
}

const errorName = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "name" in u && typeof u.name === "string" ? u.name : undefined

const messageOf = (u: unknown): string =>
  typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" && u.message !== ""
    ? u.message.slice(0, 2000)
    : "the credential failed without a message"

const linkErrorFrom = (credential: string, scopes: ReadonlyArray<string>, u: unknown): Array<LinkError> => {
  const error = fromAzureError(credential, scopes, u)
  return error._tag === "ChainedAuthenticationError" ? [...error.errors] : [error]
}

const interactionCodes = new Set(["interaction_required", "consent_required", "login_required"])

/**
 * Maps an error thrown by an Azure SDK credential to this library's errors, by `name`:
 * `CredentialUnavailableError` → `CredentialUnavailableError`, `AuthenticationRequiredError` →
 * `AuthenticationRequiredError`, `AggregateAuthenticationError` → `ChainedAuthenticationError` (each of its
 * `errors` mapped), and anything else (`AuthenticationError`, `RestError`, …) → `ClientAuthenticationError`, so a
 * chain stops rather than silently trying another identity.
 *
 * One exception to the names: `@azure/identity` reports Entra's refusals (`invalid_client`, …) from its MSAL-based
 * credentials as an `AuthenticationRequiredError` caused by an MSAL `ServerError`. Those are
 * `ClientAuthenticationError`s here (with the error code, status and correlation id), so a wrong secret stops a chain.
 *
 * @since 0.1.0
 * @category errors
 */
export const fromAzureError = (
  credential: string,
  scopes: ReadonlyArray<string>,
  u: unknown
): IdentityError => {
  const name = errorName(u)
  const message = messageOf(u)
  const any = u as Record<string, any>
  switch (name) {
    case "CredentialUnavailableError":
      return new CredentialUnavailableError({ credential, reason: message })
    case "AuthenticationRequiredError": {
      const cause = any.cause as Record<string, unknown> | undefined
      if (
        errorName(cause) === "ServerError" && typeof cause?.errorCode === "string" &&
        !interactionCodes.has(cause.errorCode)
      ) {
        // @azure/identity wraps Entra's answers (invalid_client, …) from MSAL as AuthenticationRequiredError, which
        // would make a chain move on past a wrong secret: the authority said no, so the chain must stop.
        const errorNo = typeof cause.errorNo === "string" ? Number(cause.errorNo) : Number.NaN
        return new ClientAuthenticationError({
          credential,
          reason: message,
          error: cause.errorCode,
          ...(typeof cause.status === "number" ? { status: cause.status } : {}),
          ...(Number.isInteger(errorNo) ? { errorCodes: [errorNo] } : {}),
          ...(typeof cause.correlationId === "string" && cause.correlationId !== ""
            ? { correlationId: cause.correlationId }
            : {})
        })
      }
      const claims = any.getTokenOptions?.claims
      return new AuthenticationRequiredError({
        credential,
        reason: message,
        scopes: Array.isArray(any.scopes) ? any.scopes.filter((s: unknown) => typeof s === "string") : [...scopes],
        ...(typeof claims === "string" ? { claims } : {})
      })
    }
    case "AggregateAuthenticationError": {
      const errors: Array<unknown> = Array.isArray(any.errors) ? any.errors : []
      return new ChainedAuthenticationError({
        credential,
        errors: errors.length === 0
          ? [new CredentialUnavailableError({ credential, reason: message })]
          : errors.flatMap((e) => linkErrorFrom(errorName(e) ?? credential, scopes, e))
      })
    }
    default: {
      const response = typeof any?.errorResponse === "object" && any.errorResponse !== null ? any.errorResponse : {}
      const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined)
      const fields = {
        status: typeof any?.statusCode === "number" ? any.statusCode : undefined,
        error: str(response.error),
        errorDescription: str(response.errorDescription),
        errorCodes:
          Array.isArray(response.errorCodes) && response.errorCodes.every((c: unknown) => typeof c === "number")
            ? response.errorCodes as Array<number>
            : undefined,
        correlationId: str(response.correlationId),
        traceId: str(response.traceId),
        timestamp: str(response.timestamp)
      }
      return new ClientAuthenticationError({
        credential,
        reason: name === undefined || name === "AuthenticationError" ? message : `${name}: ${message}`,
        ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined))
      })
    }
  }
}

const isEpochMillis = (u: unknown): u is number =>
  typeof u === "number" && Number.isFinite(u) && Math.abs(u) <= 8_640_000_000_000_000

/**
 * A `TokenCredential` service backed by any `@azure/core-auth` credential (all of `@azure/identity`). The Azure
 * credential does its own caching; this adds none. Interrupting `getToken` aborts the Azure call through its
 * `abortSignal`. A `null` token is a `CredentialUnavailableError`; a token without a token string or a usable
 * `expiresOnTimestamp`, a `ClientAuthenticationError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFromTokenCredential = (
  credential: CoreAuth.TokenCredential,
  options?: FromOptions
): TokenCredential.Service => {
  const name = nameOf(credential, options)
  return TokenCredential.make(name, (scopes, getTokenOptions) => {
    const list = typeof scopes === "string" ? [scopes] : [...scopes]
    return Effect.tryPromise({
      try: (signal) =>
        credential.getToken(list, {
          abortSignal: signal,
          ...(getTokenOptions?.tenantId === undefined ? {} : { tenantId: getTokenOptions.tenantId }),
          ...(getTokenOptions?.claims === undefined ? {} : { claims: getTokenOptions.claims }),
          ...(getTokenOptions?.enableCae === undefined ? {} : { enableCae: getTokenOptions.enableCae })
        }),
      catch: (u) => fromAzureError(name, list, u)
    }).pipe(
      Effect.flatMap((token): Effect.Effect<AccessToken.AccessToken, IdentityError> =>
        token === null
          ? Effect.fail(
            new CredentialUnavailableError({ credential: name, reason: "the credential returned no token" })
          )
          : Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const expires: unknown = token.expiresOnTimestamp
            // a third-party credential may answer anything: an unusable shape is a typed failure, not a defect
            if (typeof token.token !== "string" || token.token === "" || !isEpochMillis(expires)) {
              return Effect.fail(
                new ClientAuthenticationError({
                  credential: name,
                  reason: "the credential returned a token without a token string or without a usable expiry " +
                    "(expiresOnTimestamp, epoch milliseconds)"
                })
              )
            }
            const given: unknown = token.refreshAfterTimestamp
            const refresh = isEpochMillis(given) ? given : AccessToken.computeRefreshOnMillis(now, expires)
            return Effect.succeed<AccessToken.AccessToken>({
              token: Redacted.make(token.token),
              expiresOn: DateTime.unsafeMake(expires),
              refreshOn: Option.some(DateTime.unsafeMake(Math.min(refresh, expires))),
              tokenType: token.tokenType ?? "Bearer"
            })
          })
      ),
      Effect.withSpan("AzureSdk.fromTokenCredential.getToken", {
        attributes: Spans.attributes(name, list, { tenant: getTokenOptions?.tenantId })
      })
    )
  })
}

/**
 * A layer providing this library's `TokenCredential` from any `@azure/identity` credential, e.g.
 * `AzureSdk.fromTokenCredential(new AzureCliCredential())`.
 *
 * @since 0.1.0
 * @category layers
 */
export const fromTokenCredential = (
  credential: CoreAuth.TokenCredential,
  options?: FromOptions
): Layer.Layer<TokenCredential.TokenCredential> =>
  Layer.succeed(TokenCredential.TokenCredential, makeFromTokenCredential(credential, options))

// -----------------------------------------------------------------------------
// getBearerTokenProvider
// -----------------------------------------------------------------------------

/**
 * Options of `getBearerTokenProvider`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BearerTokenProviderOptions {
  /** Aborts the `getToken` calls of this provider (fixed when the provider is made, as in `@azure/identity`). */
  readonly abortSignal?: AbortSignal | undefined
  /** Ask for CAE tokens (`enableCae`). Default `true`, as `@azure/identity` does. */
  readonly enableCae?: boolean | undefined
  /** The runtime whose `Clock` measures time. Default `Runtime.defaultRuntime`. */
  readonly runtime?: Runtime.Runtime<never> | undefined
}

/**
 * Like `@azure/identity`'s `getBearerTokenProvider`: a function that resolves to a bearer token for `scopes`, for
 * Promise code that sets `Authorization` headers itself (OpenAI clients, `fetch`). Takes any `@azure/core-auth`
 * credential: one from `toTokenCredential` / `createCredential`, or an `@azure/identity` one. The token is kept per
 * provider and refreshed as the Azure SDK's bearer-token policy does: in the background from 2 minutes before it
 * expires (or from `refreshAfterTimestamp`), at once within 1 second of expiry. A failure rejects with the
 * credential's error; a credential answering `null` rejects with `Error("Failed to get access token")`.
 *
 * @example
 * ```ts
 * import { AzureSdk } from "effect-azure-identity"
 *
 * const credential = AzureSdk.createCredential()
 * const getToken = AzureSdk.getBearerTokenProvider(credential, "https://cognitiveservices.azure.com/.default")
 * const response = await fetch("https://my-resource.openai.azure.com/openai/models?api-version=2024-10-21", {
 *   headers: { authorization: `Bearer ${await getToken()}` }
 * })
 * console.log(response.status)
 * await credential.close()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const getBearerTokenProvider = (
  credential: CoreAuth.TokenCredential,
  scopes: string | ReadonlyArray<string>,
  options?: BearerTokenProviderOptions
): () => Promise<string> => BearerTokenProvider.make(credential, scopes, options)

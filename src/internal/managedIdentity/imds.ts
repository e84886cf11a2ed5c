/**
 * IMDS, the Instance Metadata Service of Azure VMs, VM scale sets and AKS nodes (also aad-pod-identity's NMI through
 * `AZURE_POD_IDENTITY_AUTHORITY_HOST`):
 * `GET {host}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…[&client_id|object_id|msi_res_id=…]`
 * with `Metadata: true`.
 *
 * The probe (inside any chain, or with `probe: true`): one request without the `Metadata` header, no retries, a short
 * timeout; any HTTP answer means IMDS is there (except Docker Desktop's 403 "unreachable"). "Available" is
 * remembered for the life of the layer, "unavailable" only for a while, so an IMDS that starts late still works.
 *
 * @internal
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import type * as Scope from "effect/Scope"
import { CredentialUnavailableError } from "../../IdentityError.js"
import type { RetryOptions } from "../../RetryOptions.js"
import { withinChain } from "../chainContext.js"
import type { RetryPolicy } from "../http.js"
import { resolvePolicy, sendWithRetry } from "../http.js"
import * as SingleFlight from "../singleFlight.js"
import type { Source, SourceContext } from "./common.js"
import { commonHeaders, fetchToken, identityParams, withRedactedHeaders } from "./common.js"

/** @internal */
export const label = "IMDS"

/** @internal */
export const defaultHost = "http://169.254.169.254"

/** @internal */
export const tokenPath = "/metadata/identity/oauth2/token"

/** @internal */
export const apiVersion = "2018-02-01"

/** The probe's default timeout (1 s). @internal */
export const defaultProbeTimeoutMillis = 1000

/** How long a negative probe is remembered (5 min). @internal */
export const defaultProbeUnavailableMillis = 5 * 60 * 1000

/**
 * IMDS guidance: retry 404 (identity not yet propagated), 410 (IMDS updating: back within 70 s), 429 and 5xx with
 * exponential backoff. 410 starts at 3 s and keeps retrying until at least 70 s have passed (at most ~140 s).
 * Connection failures (refused, unreachable, reset) are retried at most twice (about 2.4 s in all), so a machine
 * without IMDS gives up within 5 s; inside a chain not at all (see {@link chainRetryPolicy}).
 *
 * @internal
 */
export const retryPolicy: RetryPolicy = {
  maxRetries: 5,
  baseDelayMillis: 800,
  maxDelayMillis: 64_000,
  maxElapsedMillis: 60_000,
  attemptTimeoutMillis: 20_000,
  retryStatus: (status) => status === 404 || status === 410 || status === 429 || status >= 500,
  // with delays of at most 64 s, a budget of 140 s guarantees an attempt after 70 s
  statusRules: [{ status: 410, baseDelayMillis: 3000, maxRetries: 8, maxElapsedMillis: 140_000 }],
  maxConnectionRetries: 2
}

/** Inside a chain: the same, but a connection failure is final (the probe has already said IMDS is there). @internal */
export const chainRetryPolicy = (policy: RetryPolicy): RetryPolicy => ({ ...policy, maxConnectionRetries: 0 })

/** Normalises a host: adds `http://` when no scheme is given, drops trailing slashes. @internal */
export const normalizeHost = (host: string): string => {
  const trimmed = host.trim().replace(/\/+$/, "")
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`
}

/** @internal */
export interface ImdsOptions {
  readonly host: string
  /** Where the host came from, for messages. */
  readonly hostSource: string
  /** `true`: always probe; `false`: never; `undefined`: probe when running inside a chain. */
  readonly probe: boolean | undefined
  readonly probeTimeoutMillis: number
  readonly probeUnavailableMillis: number
  readonly retryPolicy?: RetryOptions | undefined
}

type ProbeState =
  | { readonly _tag: "Unknown" }
  | { readonly _tag: "Available" }
  | { readonly _tag: "Unavailable"; readonly until: number; readonly error: CredentialUnavailableError }

/** @internal */
export const make = (ctx: SourceContext, options: ImdsOptions): Effect.Effect<Source, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const url = `${options.host}${tokenPath}`
    const how = {
      credential: ctx.credential,
      label,
      secrets: [],
      imds: true,
      noResponseHint: `this is not an Azure VM, VM scale set or AKS node with a managed identity (IMDS at ` +
        `${options.host}, from ${options.hostSource}). Outside Azure, use another credential`
    }

    const tokenRequest = (resource: string) =>
      Effect.map(commonHeaders, (headers) =>
        HttpClientRequest.get(url).pipe(
          HttpClientRequest.setUrlParams({
            "api-version": apiVersion,
            resource,
            ...identityParams(ctx.identity, { clientId: "client_id", objectId: "object_id", resourceId: "msi_res_id" })
          }),
          HttpClientRequest.setHeaders({ ...headers, Metadata: "true" })
        ))

    const alone = resolvePolicy(options.retryPolicy, retryPolicy)
    const chained = chainRetryPolicy(alone)
    const requestToken = (resource: string, inChain: boolean) =>
      fetchToken(ctx.client, how, tokenRequest(resource), inChain ? chained : alone)

    if (options.probe === false) return { label, getToken: (resource) => requestToken(resource, false) }

    const probePolicy: RetryPolicy = {
      maxRetries: 0,
      baseDelayMillis: 0,
      maxDelayMillis: 0,
      maxElapsedMillis: 0,
      attemptTimeoutMillis: options.probeTimeoutMillis,
      retryStatus: () => false
    }
    const unavailableFor = (why: string) =>
      new CredentialUnavailableError({
        credential: ctx.credential,
        code: "endpoint-unreachable",
        reason: `${why}, so this is not an Azure VM, VM scale set or AKS node with a managed identity. Outside ` +
          `Azure, use another credential (this answer is remembered for ${
            Math.round(options.probeUnavailableMillis / 1000)
          } s, then IMDS is probed again)`
      })

    // one request without the Metadata header: any HTTP answer means IMDS is there
    const probeOnce: Effect.Effect<void, CredentialUnavailableError> = sendWithRetry(
      ctx.client,
      Effect.map(commonHeaders, (headers) => HttpClientRequest.get(url).pipe(HttpClientRequest.setHeaders(headers))),
      probePolicy
    ).pipe(
      Effect.flatMap((outcome) => {
        if (Either.isLeft(outcome.result)) {
          const failure = outcome.result.left
          return Effect.fail(unavailableFor(
            failure.kind === "timeout"
              ? `IMDS (${options.host}) did not answer the probe within ${options.probeTimeoutMillis} ms`
              : `IMDS (${options.host}) could not be reached (${failure.description})`
          ))
        }
        const response = outcome.result.right
        if (response.status === 403 && /unreachable/i.test(response.text)) {
          return Effect.fail(unavailableFor(
            `IMDS is unreachable: a proxy answered the probe with HTTP 403 "unreachable" (as Docker Desktop does)`
          ))
        }
        return Effect.void
      }),
      withRedactedHeaders
    )

    let state: ProbeState = { _tag: "Unknown" }
    // concurrent callers share one probe; it runs in the layer's scope and sets `state` before they resume
    const probe = SingleFlight.make<void, CredentialUnavailableError>({
      scope,
      onExit: (exit, at) =>
        Effect.sync(() => {
          if (Exit.isSuccess(exit)) {
            state = { _tag: "Available" }
          } else {
            const failure = Cause.failureOption(exit.cause)
            if (failure._tag === "Some") {
              state = { _tag: "Unavailable", until: at + options.probeUnavailableMillis, error: failure.value }
            }
          }
        })
    })

    const ensureAvailable: Effect.Effect<void, CredentialUnavailableError> = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => {
        if (state._tag === "Available") return Effect.void
        if (state._tag === "Unavailable" && now < state.until) return Effect.fail(state.error)
        return probe.run(probeOnce)
      }
    )

    return {
      label,
      getToken: (resource) =>
        Effect.flatMap(FiberRef.get(withinChain), (inChain) =>
          options.probe === true || inChain
            ? Effect.zipRight(ensureAvailable, requestToken(resource, true))
            : requestToken(resource, false))
    }
  })

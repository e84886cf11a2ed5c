/**
 * The on-behalf-of flow (OBO): a middle-tier API that received a user's access token exchanges it for a token to
 * call another API as that user (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
 * `requested_token_use=on_behalf_of`, `assertion` = the user's token), authenticating the app with a client secret
 * or a certificate (a fresh signed assertion per request).
 *
 * - The user assertion is fixed with the `userAssertionToken` option, or given per request with
 *   `withUserAssertion(token)(effect)`, so one layer (one cache) serves every user of a server. The per-request
 *   assertion wins.
 * - Tokens are cached per user assertion, tenant, scopes and CAE flag; the assertion is never stored in clear in a
 *   key (its SHA-256 is), and appears in no error or log line.
 * - Reads no environment variables besides `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` when those
 *   options are not given. A certificate file is read through the `FileSystem` of the context when there is one
 *   (the node layer of this library provides it), for every network request.
 * - In a chain: missing options, no user assertion or an unreadable certificate are `CredentialUnavailableError`
 *   (the chain moves on); a rejected assertion or client secret is `ClientAuthenticationError` (the chain stops).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { OnBehalfOfCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = OnBehalfOfCredential.layer({
 *   tenantId: "00000000-0000-0000-0000-000000000000",
 *   clientId: "11111111-1111-1111-1111-111111111111",
 *   clientSecret: Redacted.make(process.env.MY_SECRET ?? "")
 * }).pipe(Layer.provide(IdentityNode.layer))
 *
 * // in a request handler, with the caller's bearer token:
 * const callGraph = (incoming: string) =>
 *   TokenCredential.getToken("https://graph.microsoft.com/User.Read").pipe(
 *     OnBehalfOfCredential.withUserAssertion(Redacted.make(incoming))
 *   )
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { createHash } from "node:crypto"
import { CredentialUnavailableError } from "./IdentityError.js"
import type { FormValue } from "./internal/aad.js"
import { mergeClaims, requestToken, tokenEndpoint } from "./internal/aad.js"
import { certificateAssertionFields, prepareCertificate } from "./internal/clientAssertion.js"
import * as Confidential from "./internal/confidentialClient.js"
import * as TokenCacheEngine from "./internal/tokenCache.js"
import type { RetryOptions } from "./RetryOptions.js"
import * as TokenCredential from "./TokenCredential.js"

/**
 * Give `clientSecret`, or a certificate (`certificatePath` or `certificate`), not both.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tenantId: string
  readonly clientId: string
  /** The user's access token this API received. Optional when every call uses `withUserAssertion`. */
  readonly userAssertionToken?: Redacted.Redacted<string> | undefined
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** Path of a PEM file holding the certificate(s) and the private key. */
  readonly certificatePath?: string | undefined
  /** The PEM text itself (certificate(s) and private key). */
  readonly certificate?: string | Redacted.Redacted<string> | undefined
  /** Password of an encrypted private key. */
  readonly certificatePassword?: Redacted.Redacted<string> | undefined
  /** Send the certificate chain (`x5c`) for Subject Name / Issuer authentication. */
  readonly sendCertificateChain?: boolean | undefined
  /** `PS256` (default) or `RS256`. */
  readonly signingAlgorithm?: "PS256" | "RS256" | undefined
  /** Defaults to `AZURE_AUTHORITY_HOST`, else the public cloud. */
  readonly authorityHost?: string | undefined
  /** Tenants `getToken` may ask for besides `tenantId` (`"*"` for any). Defaults to `AZURE_ADDITIONALLY_ALLOWED_TENANTS`. */
  readonly additionallyAllowedTenants?: ReadonlyArray<string> | undefined
  /** Override how token requests are retried. */
  readonly retryPolicy?: RetryOptions | undefined
}

/**
 * The credential's name, `"OnBehalfOfCredential"`: the `name` of its service and the `credential` of its errors (and of
 * the tokens a chain returns).
 *
 * @since 0.1.0
 * @category names
 */
export const name = "OnBehalfOfCredential"

/**
 * The OAuth `grant_type` of the on-behalf-of request (the JWT bearer grant), as sent to the token endpoint.
 *
 * @since 0.1.0
 * @category constants
 */
export const grantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

/**
 * The user assertion of the current fiber, set by {@link withUserAssertion}.
 *
 * @since 0.1.0
 * @category user assertion
 */
export const currentUserAssertion: FiberRef.FiberRef<Option.Option<Redacted.Redacted<string>>> = FiberRef
  .unsafeMake<Option.Option<Redacted.Redacted<string>>>(Option.none())

/**
 * Runs `effect` with `assertion` as the user assertion of every `OnBehalfOfCredential` it calls.
 *
 * @since 0.1.0
 * @category user assertion
 */
export const withUserAssertion =
  (assertion: Redacted.Redacted<string>) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.locally(effect, currentUserAssertion, Option.some(assertion))

/** The cache-key part naming a user assertion: its SHA-256, never the assertion. */
const assertionKey = (assertion: Redacted.Redacted<string>): string =>
  `obo:${createHash("sha256").update(Redacted.value(assertion)).digest("base64url")}`

/**
 * Builds the credential's `TokenCredential` service in the current scope, which its token cache lives in: for composing
 * services by hand (most programs use `layer`). Needs `HttpClient`; it never fails: a problem with the options surfaces
 * from `getToken`. A certificate file is read through the `FileSystem` of the context, when there is one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const resolvedEither = yield* Effect.either(Confidential.resolve(name, options))
    if (Either.isLeft(resolvedEither)) return Confidential.unavailable(name, resolvedEither.left.message)
    const resolved = resolvedEither.right
    const secret = options.clientSecret !== undefined && Redacted.value(options.clientSecret) !== ""
      ? options.clientSecret
      : undefined
    const hasCertificate = (options.certificatePath?.trim() ?? "") !== "" || options.certificate !== undefined
    if (secret !== undefined && hasCertificate) {
      return Confidential.unavailable(name, "both a client secret and a certificate were given: give only one")
    }
    if (secret === undefined && !hasCertificate) {
      return Confidential.unavailable(
        name,
        "no client secret or certificate was given: set clientSecret, certificatePath or certificate"
      )
    }
    const clientAuth: (tokenEndpoint: string) => Effect.Effect<
      Readonly<Record<string, FormValue>>,
      CredentialUnavailableError
    > = secret !== undefined
      ? () => Effect.succeed({ client_secret: secret })
      : yield* Effect.map(
        prepareCertificate(name, options),
        (certificate) => (endpoint: string) => certificateAssertionFields(certificate, resolved.clientId, endpoint)
      )
    const cache = yield* TokenCacheEngine.make({
      partition: `${name}|${resolved.authorityHost}|${resolved.clientId}`,
      name
    })
    const fetch = (
      assertion: Redacted.Redacted<string>,
      tenantId: string,
      scopes: ReadonlyArray<string>,
      claims: string | undefined
    ) =>
      requestToken(resolved.client, {
        credential: name,
        authorityHost: resolved.authorityHost,
        tenantId,
        scopes,
        claims,
        retryPolicy: resolved.retryPolicy,
        form: Effect.map(clientAuth(tokenEndpoint(resolved.authorityHost, tenantId)), (auth) => ({
          client_id: resolved.clientId,
          grant_type: grantType,
          assertion,
          requested_token_use: "on_behalf_of",
          ...auth
        }))
      }).pipe(Effect.map((response) => response.accessToken))

    return TokenCredential.make(name, (scopes, getTokenOptions) =>
      Effect.flatMap(FiberRef.get(currentUserAssertion), (fromFiber) => {
        const assertion = Option.isSome(fromFiber) ? fromFiber.value : options.userAssertionToken
        if (assertion === undefined || Redacted.value(assertion).trim() === "") {
          return Effect.fail(
            new CredentialUnavailableError({
              credential: name,
              reason: "no user assertion was given: set userAssertionToken, or run getToken inside " +
                "OnBehalfOfCredential.withUserAssertion(token)"
            })
          )
        }
        const prepared = Confidential.prepare(resolved, scopes, getTokenOptions)
        if (Either.isLeft(prepared)) {
          return Effect.fail(prepared.left)
        }
        const { scopes: list, tenantId } = prepared.right
        const enableCae = getTokenOptions?.enableCae === true
        const claims = mergeClaims(getTokenOptions?.claims, enableCae)
        const bypass = getTokenOptions?.claims !== undefined && getTokenOptions.claims.trim() !== ""
        return cache.get(
          `${assertionKey(assertion)}|${TokenCacheEngine.cacheKey(tenantId, list, enableCae)}`,
          fetch(assertion, tenantId, list, claims),
          bypass
        )
      }))
  }).pipe(Effect.annotateLogs("module", name))

/**
 * Provides `TokenCredential` as this credential, caching tokens in memory (and in the `TokenCache` of the context, when
 * one is provided). Needs `HttpClient` (`effect-azure-identity/node`'s `layer` provides it); it never fails to build: a
 * problem with the options surfaces from `getToken`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<TokenCredential.TokenCredential, never, HttpClient.HttpClient> =>
  Layer.scoped(TokenCredential.TokenCredential, make(options))

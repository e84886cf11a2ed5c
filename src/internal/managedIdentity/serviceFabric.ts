/**
 * Service Fabric: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT`, API 2019-07-01-preview:
 * `GET $IDENTITY_ENDPOINT?api-version=2019-07-01-preview&resource=…` with `secret: $IDENTITY_HEADER`.
 *
 * The endpoint serves a self-signed certificate: the request goes through a `PinnedHttpClient` that accepts only the
 * certificate whose thumbprint is `IDENTITY_SERVER_THUMBPRINT` (the other SDKs switch verification off). User-assigned
 * identities are configured in the cluster, not per request.
 *
 * @internal
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { ClientAuthenticationError } from "../../IdentityError.js"
import * as PinnedHttpClient from "../../PinnedHttpClient.js"
import type { RetryPolicy } from "../http.js"
import { sendWithRetry } from "../http.js"
import type { Source, SourceContext } from "./common.js"
import {
  commonHeaders,
  interpret,
  managedIdentityClient,
  unavailableSource,
  userAssignedUnsupported,
  withRedactedHeaders
} from "./common.js"

/** @internal */
export const label = "Service Fabric"

/** @internal */
export const apiVersion = "2019-07-01-preview"

/** @internal */
export interface Environment {
  readonly endpoint: string
  readonly header: Redacted.Redacted<string>
  readonly thumbprint: string
}

/** @internal */
export const make = (
  ctx: SourceContext,
  env: Environment,
  pinned: Option.Option<PinnedHttpClient.Service>
): Effect.Effect<Source, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (ctx.identity._tag !== "SystemAssigned") {
      return userAssignedUnsupported(
        ctx,
        label,
        "Service Fabric applications get their identities from the cluster configuration, not per request"
      )
    }
    const thumbprint = PinnedHttpClient.parseThumbprint(env.thumbprint, "IDENTITY_SERVER_THUMBPRINT")
    if (Either.isLeft(thumbprint)) {
      return unavailableSource(
        ctx.credential,
        label,
        `IDENTITY_SERVER_THUMBPRINT is invalid: ${thumbprint.left.message}`
      )
    }
    if (Option.isNone(pinned)) {
      return unavailableSource(
        ctx.credential,
        label,
        "the Service Fabric endpoint uses a self-signed certificate, which needs an HTTP client pinned to " +
          "IDENTITY_SERVER_THUMBPRINT: provide effect-azure-identity/node's layer (or a PinnedHttpClient)"
      )
    }
    const client = managedIdentityClient(yield* pinned.value.make(thumbprint.right))
    const how = {
      credential: ctx.credential,
      label,
      secrets: [env.header],
      noResponseHint: "check that IDENTITY_ENDPOINT names the Service Fabric managed identity endpoint"
    }
    // a certificate that does not match the pin is refused at once, never retried
    const policy: RetryPolicy = {
      ...ctx.retryPolicy,
      retryTransport: (failure) => !failure.description.includes(PinnedHttpClient.thumbprintMismatchCode)
    }
    const request = (resource: string) =>
      Effect.map(commonHeaders, (headers) =>
        HttpClientRequest.get(env.endpoint).pipe(
          HttpClientRequest.appendUrlParams({ "api-version": apiVersion, resource }),
          HttpClientRequest.setHeaders({ ...headers, secret: Redacted.value(env.header) })
        ))
    const source: Source = {
      label,
      getToken: (resource) =>
        sendWithRetry(client, request(resource), policy).pipe(
          Effect.flatMap((outcome) => {
            if (
              Either.isLeft(outcome.result) &&
              outcome.result.left.description.includes(PinnedHttpClient.thumbprintMismatchCode)
            ) {
              return Effect.fail(
                new ClientAuthenticationError({
                  credential: ctx.credential,
                  reason: `the Service Fabric endpoint ${outcome.url} presented a certificate whose thumbprint is ` +
                    `not IDENTITY_SERVER_THUMBPRINT (${thumbprint.right.hex}); the request was not sent. Check ` +
                    `IDENTITY_SERVER_THUMBPRINT and IDENTITY_ENDPOINT`
                })
              )
            }
            return interpret(how, outcome)
          }),
          withRedactedHeaders
        )
    }
    return source
  })

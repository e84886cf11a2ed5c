/**
 * The token exchange source (AKS workload identity): `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_TENANT_ID` + a client id
 * → the client-credentials grant with the federated token as client assertion, built on the shared confidential
 * client (the same one `WorkloadIdentityCredential` uses), once per layer (its token cache lives as long as the
 * layer). Its errors are re-labelled as this credential's, saying they come from the token exchange.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { IdentityError } from "../../IdentityError.js"
import {
  AuthenticationRequiredError,
  ChainedAuthenticationError,
  ClientAuthenticationError,
  CredentialUnavailableError
} from "../../IdentityError.js"
import type { RetryOptions } from "../../RetryOptions.js"
import * as TokenCredential from "../../TokenCredential.js"
import { assertionFields, readFederatedToken } from "../clientAssertion.js"
import { makeClientCredentials } from "../confidentialClient.js"

/** The name the exchange's own errors carry before they are re-labelled (as `WorkloadIdentityCredential` does). */
const exchangeName = "WorkloadIdentityCredential"

/** @internal */
export const label = "token exchange (workload identity)"

/** @internal */
export interface Environment {
  readonly tenantId: string
  readonly clientId: string
  readonly tokenFilePath: string
}

/** The error as this credential's, saying it came from the token exchange. @internal */
export const relabel = (credential: string, error: IdentityError): IdentityError => {
  const reason = (r: string) => `${label} through ${exchangeName}: ${r}`
  switch (error._tag) {
    case "CredentialUnavailableError":
      return new CredentialUnavailableError({ credential, reason: reason(error.reason) })
    case "ClientAuthenticationError": {
      const { _tag: _, credential: __, reason: r, ...rest } = error
      return new ClientAuthenticationError({ ...rest, credential, reason: reason(r) })
    }
    case "AuthenticationRequiredError": {
      const { _tag: _, credential: __, reason: r, ...rest } = error
      return new AuthenticationRequiredError({ ...rest, credential, reason: reason(r) })
    }
    case "ChainedAuthenticationError":
      return new ChainedAuthenticationError({ credential, errors: error.errors })
  }
}

/** @internal */
export const make = (
  credential: string,
  env: Environment,
  retryPolicy: RetryOptions | undefined
): Effect.Effect<TokenCredential.Service, never, HttpClient.HttpClient | FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = env.tokenFilePath.trim()
    const exchange = yield* makeClientCredentials(
      exchangeName,
      { tenantId: env.tenantId, clientId: env.clientId, ...(retryPolicy !== undefined ? { retryPolicy } : {}) },
      () => Effect.map(readFederatedToken(exchangeName, fs, path), assertionFields)
    )
    return TokenCredential.make(
      credential,
      (scopes, options) => Effect.mapError(exchange.getToken(scopes, options), (error) => relabel(credential, error))
    )
  })

/**
 * What the emulator knows (apps, users, managed identities, lifetimes) and what it remembers between requests
 * (authorization codes, refresh tokens, device codes, Arc keys, faults, the request log).
 *
 * @internal
 */
import * as Either from "effect/Either"
import type { RegisteredCertificate, SigningKey } from "./jwt.js"
import { registerCertificate } from "./jwt.js"

/** The Azure CLI's app id: registered as a public client, as the developer credentials use it. @internal */
export const azureCliClientId = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

/** @internal */
export interface ResolvedApp {
  readonly clientId: string
  readonly objectId: string
  readonly displayName: string
  readonly secrets: ReadonlyArray<string>
  readonly certificates: ReadonlyArray<RegisteredCertificate>
  /** `undefined`: any subject of an assertion the emulator minted is accepted. */
  readonly federatedSubjects: ReadonlyArray<string> | undefined
  readonly publicClient: boolean
  /** Empty: any redirect URI is accepted. */
  readonly redirectUris: ReadonlyArray<string>
}

/** @internal */
export interface ResolvedUser {
  readonly username: string
  readonly password: string | undefined
  readonly objectId: string
  readonly displayName: string
}

/** @internal */
export interface ResolvedIdentity {
  readonly clientId: string
  readonly objectId: string
  readonly resourceId: string
  readonly systemAssigned: boolean
}

/** @internal */
export interface FaultSpec {
  readonly status?: number | undefined
  readonly retryAfterSeconds?: number | undefined
  readonly delayMillis?: number | undefined
  readonly malformedBody?: boolean | undefined
  /** How many requests the fault applies to; then it is removed. `undefined`: until cleared. */
  readonly times?: number | undefined
}

/** @internal */
export interface AuthorizationCode {
  readonly clientId: string
  readonly username: string
  readonly tenantId: string
  readonly redirectUri: string | undefined
  readonly scopes: ReadonlyArray<string>
  readonly codeChallenge: string | undefined
  readonly codeChallengeMethod: string | undefined
  readonly expiresAtMillis: number
  redeemed: boolean
}

/** @internal */
export interface RefreshToken {
  readonly clientId: string
  readonly username: string
  readonly tenantId: string
  revoked: boolean
}

/** @internal */
export interface DeviceCode {
  readonly clientId: string
  readonly tenantId: string
  readonly userCode: string
  readonly scopes: ReadonlyArray<string>
  readonly expiresAtMillis: number
  status: { readonly _tag: "Pending" } | { readonly _tag: "Approved"; readonly username: string } | {
    readonly _tag: "Denied"
  } | { readonly _tag: "Redeemed" }
}

/** @internal */
export interface RecordedRequest {
  readonly route: string
  readonly method: string
  /** Path only: never the query string or the body. */
  readonly path: string
  readonly status: number
  readonly atMillis: number
}

/** @internal */
export interface Settings {
  readonly tenantId: string
  readonly additionalTenants: ReadonlyArray<string>
  readonly apps: ReadonlyArray<ResolvedApp>
  readonly users: ReadonlyArray<ResolvedUser>
  readonly identities: ReadonlyArray<ResolvedIdentity>
  readonly tokenLifetimeSeconds: number
  readonly managedIdentityTokenLifetimeSeconds: number
  readonly refreshInSeconds: number | undefined
  readonly identityHeader: string
  readonly msiSecret: string
  /** Azure Pipelines: the system access token the OIDC endpoint accepts, and its one service connection. */
  readonly pipelinesAccessToken: string
  readonly pipelinesServiceConnectionId: string
  readonly deviceCodeIntervalSeconds: number
  readonly autoApproveDeviceCodes: boolean
  readonly arcKeyDirectory: string
}

/** @internal */
export interface State {
  readonly settings: Settings
  /** `scheme://host:port` the emulator listens on, as configured (clients may address it by another name). */
  readonly baseUrl: string
  readonly key: SigningKey
  readonly codes: Map<string, AuthorizationCode>
  readonly refreshTokens: Map<string, RefreshToken>
  readonly deviceCodes: Map<string, DeviceCode>
  readonly arcKeys: Set<string>
  readonly faults: Map<string, FaultSpec>
  readonly log: Array<RecordedRequest>
}

/** @internal */
export const makeState = (settings: Settings, key: SigningKey, baseUrl: string): State => ({
  settings,
  baseUrl,
  key,
  codes: new Map(),
  refreshTokens: new Map(),
  deviceCodes: new Map(),
  arcKeys: new Set(),
  faults: new Map(),
  log: []
})

/** Parses every registered certificate; the first problem is returned. @internal */
export const parseCertificates = (
  pems: ReadonlyArray<string>
): Either.Either<ReadonlyArray<RegisteredCertificate>, string> => Either.all(pems.map(registerCertificate))

/** @internal */
export const findApp = (state: State, clientId: string): ResolvedApp | undefined =>
  state.settings.apps.find((a) => a.clientId.toLowerCase() === clientId.toLowerCase())

/** @internal */
export const findUser = (state: State, username: string | undefined): ResolvedUser | undefined =>
  username === undefined
    ? state.settings.users[0]
    : state.settings.users.find((u) => u.username.toLowerCase() === username.toLowerCase())

/** Tenants the emulator answers for: its own, the additional ones, and the multi-tenant aliases. @internal */
export const tenantFor = (state: State, segment: string): string | undefined => {
  const lower = segment.toLowerCase()
  if (lower === "common" || lower === "organizations" || lower === "consumers") return state.settings.tenantId
  if (lower === state.settings.tenantId.toLowerCase()) return state.settings.tenantId
  return state.settings.additionalTenants.find((t) => t.toLowerCase() === lower)
}

/**
 * Takes one use of the fault registered for a route, if any.
 *
 * @internal
 */
export const takeFault = (state: State, route: string): FaultSpec | undefined => {
  const fault = state.faults.get(route)
  if (fault === undefined) return undefined
  if (fault.times !== undefined) {
    if (fault.times <= 1) state.faults.delete(route)
    else state.faults.set(route, { ...fault, times: fault.times - 1 })
  }
  return fault
}

/**
 * A local Microsoft Entra ID and managed-identity emulator: a loopback HTTP(S) server that answers exactly what the
 * real services answer, so programs, tests and CI runners can get tokens without reaching Azure.
 *
 * It serves:
 *
 * - the Entra v2 token endpoint `/{tenant}/oauth2/v2.0/token`: client credentials with a secret or a JWT assertion
 *   (signature PS256/RS256, `aud`, time window and `x5t` / `x5t#S256` thumbprint verified against the app's
 *   registered certificates, or a federated assertion minted by the emulator), authorization code (single use,
 *   PKCE), refresh token, device code, username/password and on-behalf-of;
 * - `/{tenant}/oauth2/v2.0/devicecode` (approve with {@link Service.approveDeviceCode} or `POST /devicelogin`),
 *   `/{tenant}/oauth2/v2.0/authorize` (an HTML sign-in form for the test users, then a redirect with a code;
 *   `prompt=none` signs `login_hint` in at once),
 *   `/{tenant}/v2.0/.well-known/openid-configuration` and `/{tenant}/discovery/v2.0/keys`;
 * - IMDS `/metadata/identity/oauth2/token` (requires `Metadata: true`), App Service 2019 (`X-IDENTITY-HEADER`),
 *   App Service 2017 (`secret` header, date-string `expires_on`), Cloud Shell (form POST) and the Azure Arc
 *   challenge (401 + `WWW-Authenticate: Basic realm=<key file>` in a temporary directory it creates).
 *
 * Refusals are Entra-shaped error bodies (`error`, `error_description` with the AADSTS code, `error_codes`,
 * `trace_id`, `correlation_id`, `timestamp`): AADSTS7000215 wrong secret, 700027 / 700024 bad assertion, 54005
 * reused code, 700016 unknown client, … Tokens are RS256 JWTs signed with a key generated at start, with `aud`,
 * `iss`, `tid`, `oid`, `appid`, `iat`, `nbf`, `exp`. Time comes from `Clock`. Faults (status, `Retry-After`,
 * delay, malformed body) can be injected per route.
 *
 * The layer exposes the environment variables a program needs (`env`, `envFor(scenario)`) and a `ConfigProvider`
 * built from them, so a program runs against the emulator without touching `process.env`. Node.js only (it uses
 * `@effect/platform-node`'s `NodeHttpServer`); import it from `effect-azure-identity-emulator`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { ClientSecretCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityEmulator from "effect-azure-identity-emulator"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const program = TokenCredential.getToken("https://vault.azure.net/.default").pipe(
 *   Effect.provide(ClientSecretCredential.layerConfig().pipe(Layer.provide(IdentityNode.layer))),
 *   Effect.provide(IdentityEmulator.layerConfigProvider("environment")),
 *   Effect.provide(IdentityEmulator.layer())
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as jose from "jose"
import * as AuthorizationCode from "./internal/emulator/entra/authorizationCode.js"
import * as ClientAuth from "./internal/emulator/entra/clientAuth.js"
import * as DeviceCode from "./internal/emulator/entra/deviceCode.js"
import * as UserTokens from "./internal/emulator/entra/userTokens.js"
import * as Jwt from "./internal/emulator/jwt.js"
import * as NodeServer from "./internal/emulator/nodeServer.js"
import * as Pipelines from "./internal/emulator/pipelines.js"
import * as Server from "./internal/emulator/server.js"
import * as State from "./internal/emulator/state.js"
import * as Tokens from "./internal/emulator/tokens.js"
import { randomUuid } from "./internal/ids.js"

/**
 * An app registration.
 *
 * @since 0.1.0
 * @category models
 */
export interface App {
  readonly clientId: string
  readonly displayName?: string | undefined
  /** The service principal's object id (`oid` of app tokens). Generated when absent. */
  readonly objectId?: string | undefined
  readonly secrets?: ReadonlyArray<string | Redacted.Redacted<string>> | undefined
  /** PEM certificates whose keys may sign client assertions. */
  readonly certificates?: ReadonlyArray<string> | undefined
  /** Subjects accepted in federated assertions minted by the emulator; absent: any subject. */
  readonly federatedSubjects?: ReadonlyArray<string> | undefined
  /** Allows public client flows (device code, username/password, auth code without a secret). */
  readonly publicClient?: boolean | undefined
  /** Redirect URIs for authorization codes; absent: any (and loopback always, for public clients). */
  readonly redirectUris?: ReadonlyArray<string> | undefined
}

/**
 * A user account the emulator signs in for the user flows; a user without `password` cannot sign in with one
 * (username/password grant, sign-in page).
 *
 * @since 0.1.0
 * @category models
 */
export interface User {
  readonly username: string
  readonly password?: string | Redacted.Redacted<string> | undefined
  readonly objectId?: string | undefined
  readonly displayName?: string | undefined
}

/**
 * A managed identity. Exactly one should be `systemAssigned`; the others are user-assigned, selected by
 * `client_id`, `object_id` or resource id.
 *
 * @since 0.1.0
 * @category models
 */
export interface ManagedIdentity {
  readonly clientId: string
  readonly objectId?: string | undefined
  readonly resourceId?: string | undefined
  readonly systemAssigned?: boolean | undefined
}

/**
 * The name of one of the emulator's routes (one of {@link routes}), for injecting a fault.
 *
 * @since 0.1.0
 * @category models
 */
export type Route = Server.RouteName

/**
 * Every route name, for {@link Service.setFault}.
 *
 * @since 0.1.0
 * @category models
 */
export const routes: ReadonlyArray<Route> = Server.routes

/**
 * A fault injected into a route: answer `status` (an Entra-shaped or host-shaped error body), add `Retry-After`,
 * wait `delay` first (through `Clock`), or send a body that is not valid JSON. `times` limits it to that many
 * requests.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fault {
  readonly status?: number | undefined
  readonly retryAfterSeconds?: number | undefined
  readonly delay?: Duration.DurationInput | undefined
  readonly malformedBody?: boolean | undefined
  readonly times?: number | undefined
}

/**
 * The options of `make` and `layer`, all optional: where to listen, the tenants, apps, users and managed identities it
 * knows (one app and one user by default), token lifetimes, TLS, and faults to inject.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default 0: a free port. */
  readonly port?: number | undefined
  /** Default `127.0.0.1`. The emulator is meant for loopback only. */
  readonly host?: string | undefined
  readonly tenantId?: string | undefined
  /** Other tenants the apps may ask tokens for. */
  readonly additionalTenants?: ReadonlyArray<string> | undefined
  /** Default: one app with a generated secret that also allows public client flows. The Azure CLI's app id is always registered as a public client. */
  readonly apps?: ReadonlyArray<App> | undefined
  /** Default: `user@emulator.test` with a generated password. */
  readonly users?: ReadonlyArray<User> | undefined
  /** Default: a system-assigned identity and one user-assigned identity. */
  readonly managedIdentities?: ReadonlyArray<ManagedIdentity> | undefined
  /** Lifetime of Entra tokens. Default 1 hour. */
  readonly tokenLifetime?: Duration.DurationInput | undefined
  /** Lifetime of managed-identity tokens. Default 24 hours. */
  readonly managedIdentityTokenLifetime?: Duration.DurationInput | undefined
  /** Send `refresh_in` with Entra tokens. */
  readonly refreshIn?: Duration.DurationInput | undefined
  /** Serve https with this certificate and key (PEM), for clients that insist on https. */
  readonly tls?: { readonly cert: string; readonly key: string | Redacted.Redacted<string> } | undefined
  readonly faults?: Partial<Record<Route, Fault>> | undefined
  /** Approve every device code at once as the first user. Default false. */
  readonly autoApproveDeviceCodes?: boolean | undefined
  /** The polling interval device-code answers announce, in seconds. Default 5. */
  readonly deviceCodeIntervalSeconds?: number | undefined
  /** App Service's `IDENTITY_HEADER`. Generated when absent. */
  readonly identityHeader?: string | Redacted.Redacted<string> | undefined
  /** App Service 2017's `MSI_SECRET`. Generated when absent. */
  readonly msiSecret?: string | Redacted.Redacted<string> | undefined
}

/**
 * Which environment a program should see: a client secret (`EnvironmentCredential`), workload identity, or one
 * managed-identity host; `all` sets every variable that does not conflict (`env`).
 *
 * @since 0.1.0
 * @category models
 */
export type Scenario =
  | "environment"
  | "workload-identity"
  | "imds"
  | "app-service-2019"
  | "app-service-2017"
  | "cloud-shell"
  | "azure-arc"
  | "azure-pipelines"
  | "all"

/**
 * Every {@link Scenario}, e.g. to run one test per scenario.
 *
 * @since 0.1.0
 * @category models
 */
export const scenarios: ReadonlyArray<Scenario> = [
  "environment",
  "workload-identity",
  "imds",
  "app-service-2019",
  "app-service-2017",
  "cloud-shell",
  "azure-arc",
  "azure-pipelines",
  "all"
]

/**
 * The URLs of the emulator's endpoints: Entra ID's (token, device code, authorize, OpenID configuration), the
 * managed-identity hosts' (IMDS, App Service, Cloud Shell, Azure Arc) and Azure Pipelines' OIDC endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface Endpoints {
  readonly authorityHost: string
  readonly token: string
  readonly deviceCode: string
  readonly authorize: string
  readonly openidConfiguration: string
  readonly imdsHost: string
  readonly appService2019: string
  /** App Service 2017 (GET) and Cloud Shell (POST). */
  readonly msiEndpoint: string
  readonly arc: string
  readonly arcImdsEndpoint: string
  readonly deviceLogin: string
  /** Azure Pipelines' OIDC endpoint (`SYSTEM_OIDCREQUESTURI`). */
  readonly pipelinesOidc: string
}

/**
 * A request the emulator answered (never its query string, headers or body).
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedRequest {
  readonly route: Route
  readonly method: string
  readonly path: string
  readonly status: number
  readonly atMillis: number
}

/**
 * The emulator could not start (invalid options, e.g. no app, or a file it could not write) or a `Service` method was
 * asked for an unknown app or user; `reason` says which.
 *
 * @since 0.1.0
 * @category errors
 */
export class EmulatorError extends Data.TaggedError("EmulatorError")<{ readonly reason: string }> {
  override get message(): string {
    return `IdentityEmulator: ${this.reason}`
  }
}

/**
 * A running emulator: its URL and endpoints, the credentials it registered, the environment for each scenario, and
 * controls for tests (mint tokens, approve device codes, inject faults, read the requests it received, verify a token).
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** `http(s)://127.0.0.1:<port>`: also the authority host. */
  readonly url: string
  readonly tenantId: string
  /** The first app's client id and secret. */
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** The first user. */
  readonly username: string
  readonly password: Redacted.Redacted<string>
  readonly systemAssignedIdentity: { readonly clientId: string; readonly objectId: string } | undefined
  readonly userAssignedIdentities: ReadonlyArray<
    { readonly clientId: string; readonly objectId: string; readonly resourceId: string }
  >
  readonly endpoints: Endpoints
  /** A federated token (workload identity) for the first app, refreshed by {@link Service.mintFederatedToken}. */
  readonly federatedTokenFile: string
  /** Where Azure Arc challenge key files are written. */
  readonly arcKeyDirectory: string
  /** The variables of the `all` scenario. */
  readonly env: Readonly<Record<string, string>>
  readonly envFor: (scenario: Scenario) => Readonly<Record<string, string>>
  /** A `ConfigProvider` of `env`. */
  readonly configProvider: ConfigProvider.ConfigProvider
  readonly configProviderFor: (scenario: Scenario) => ConfigProvider.ConfigProvider
  /** The public key tokens are signed with. */
  readonly jwks: { readonly keys: ReadonlyArray<jose.JWK> }
  /** Mints a single-use authorization code, as `/authorize` would after the user signed in. */
  readonly mintAuthorizationCode: (options?: {
    readonly clientId?: string | undefined
    readonly username?: string | undefined
    readonly redirectUri?: string | undefined
    readonly scopes?: ReadonlyArray<string> | undefined
    readonly codeChallenge?: string | undefined
    readonly codeChallengeMethod?: "S256" | "plain" | undefined
  }) => Effect.Effect<string, EmulatorError>
  /** Approves a pending device code by its user code (as the first user by default); false if none matched. */
  readonly approveDeviceCode: (userCode: string, username?: string) => Effect.Effect<boolean>
  readonly denyDeviceCode: (userCode: string) => Effect.Effect<boolean>
  /** User codes of device codes waiting for approval. */
  readonly pendingDeviceCodes: Effect.Effect<ReadonlyArray<string>>
  /** A federated assertion (`aud` `api://AzureADTokenExchange`), as a Kubernetes or CI OIDC issuer would sign. */
  readonly mintFederatedToken: (options?: {
    readonly subject?: string | undefined
    readonly audience?: string | undefined
    readonly lifetime?: Duration.DurationInput | undefined
  }) => Effect.Effect<string>
  /** A user access token for `audience` (default: the first app), e.g. as the incoming token of on-behalf-of. */
  readonly mintUserToken: (options?: {
    readonly username?: string | undefined
    readonly clientId?: string | undefined
    readonly audience?: string | undefined
    readonly lifetime?: Duration.DurationInput | undefined
  }) => Effect.Effect<string, EmulatorError>
  /**
   * Mints a refresh token for a user (the first by default) of an app (default: the Azure CLI's app id, which the
   * developer credentials use), as a sign-in with `offline_access` would; with the user's MSAL home account id
   * (`<oid>.<tid>`), e.g. to write an MSAL shared token cache.
   */
  readonly mintRefreshToken: (options?: {
    readonly username?: string | undefined
    readonly clientId?: string | undefined
  }) => Effect.Effect<
    { readonly refreshToken: Redacted.Redacted<string>; readonly homeAccountId: string; readonly username: string },
    EmulatorError
  >
  /** Revokes the refresh tokens of a user (all users by default); returns how many. */
  readonly revokeRefreshTokens: (username?: string) => Effect.Effect<number>
  readonly setFault: (route: Route, fault: Fault | undefined) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Verifies a token the emulator issued and returns its claims. */
  readonly verifyToken: (token: string) => Effect.Effect<jose.JWTPayload, EmulatorError>
}

/**
 * The running emulator of the context, provided by {@link layer}.
 *
 * @since 0.1.0
 * @category tags
 */
export class IdentityEmulator extends Context.Tag("effect-azure-identity-emulator")<IdentityEmulator, Service>() {}

/**
 * The default tenant id.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTenantId = "e0e0e0e0-0000-4000-8000-000000000001"

/**
 * The default app's client id.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultClientId = "e0e0e0e0-0000-4000-8000-00000000a001"

const seconds = (d: Duration.DurationInput) => Math.max(1, Math.round(Duration.toMillis(Duration.decode(d)) / 1000))

const reveal = (s: string | Redacted.Redacted<string>) => (Redacted.isRedacted(s) ? Redacted.value(s) : s)

const toFaultSpec = (fault: Fault): State.FaultSpec => ({
  status: fault.status,
  retryAfterSeconds: fault.retryAfterSeconds,
  delayMillis: fault.delay === undefined ? undefined : Duration.toMillis(Duration.decode(fault.delay)),
  malformedBody: fault.malformedBody,
  times: fault.times
})

const writeFile = (file: string, content: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFileString(file, content, { mode: 0o600 })).pipe(
    Effect.mapError((e) => new EmulatorError({ reason: `could not write ${file}: ${e.message}` }))
  )

/**
 * Starts the emulator in the current scope; it stops when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, EmulatorError, Scope.Scope> =>
  Effect.provide(start(options), NodeServer.platform)

const start = (
  options: Options
): Effect.Effect<Service, EmulatorError, Scope.Scope | FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const uuid = randomUuid
    const tenantId = options.tenantId ?? defaultTenantId
    const generatedSecret = `emulator-secret-${(yield* uuid).replace(/-/g, "")}`
    const appsInput: ReadonlyArray<App> = options.apps ??
      [{ clientId: defaultClientId, displayName: "emulator-app", secrets: [generatedSecret], publicClient: true }]
    const apps: Array<State.ResolvedApp> = []
    for (const app of appsInput) {
      const certificates = State.parseCertificates(app.certificates ?? [])
      if (Either.isLeft(certificates)) {
        return yield* new EmulatorError({ reason: `app ${app.clientId}: ${certificates.left}` })
      }
      apps.push({
        clientId: app.clientId,
        objectId: app.objectId ?? (yield* uuid),
        displayName: app.displayName ?? app.clientId,
        secrets: (app.secrets ?? []).map(reveal),
        certificates: certificates.right,
        federatedSubjects: app.federatedSubjects,
        publicClient: app.publicClient ?? false,
        redirectUris: app.redirectUris ?? []
      })
    }
    if (apps.length === 0) return yield* new EmulatorError({ reason: "register at least one app" })
    if (!apps.some((a) => a.clientId.toLowerCase() === State.azureCliClientId)) {
      apps.push({
        clientId: State.azureCliClientId,
        objectId: yield* uuid,
        displayName: "Microsoft Azure CLI",
        secrets: [],
        certificates: [],
        federatedSubjects: undefined,
        publicClient: true,
        redirectUris: []
      })
    }
    const usersInput: ReadonlyArray<User> = options.users ??
      [{ username: "user@emulator.test", password: `emulator-password-${(yield* uuid).slice(0, 8)}` }]
    const users: Array<State.ResolvedUser> = []
    for (const user of usersInput) {
      users.push({
        username: user.username,
        password: user.password === undefined ? undefined : reveal(user.password),
        objectId: user.objectId ?? (yield* uuid),
        displayName: user.displayName ?? user.username.split("@")[0]!
      })
    }
    const identitiesInput: ReadonlyArray<ManagedIdentity> = options.managedIdentities ?? [
      { clientId: "e0e0e0e0-0000-4000-8000-00000000f001", systemAssigned: true },
      { clientId: "e0e0e0e0-0000-4000-8000-00000000f002" }
    ]
    const identities: Array<State.ResolvedIdentity> = []
    for (const [i, identity] of identitiesInput.entries()) {
      identities.push({
        clientId: identity.clientId,
        objectId: identity.objectId ?? (yield* uuid),
        resourceId: identity.resourceId ??
          `/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/emulator/providers/` +
            `Microsoft.ManagedIdentity/userAssignedIdentities/identity-${i + 1}`,
        systemAssigned: identity.systemAssigned ?? false
      })
    }

    const dir = yield* Effect.acquireRelease(
      fs.makeTempDirectory({ prefix: "effect-azure-identity-emulator-" }).pipe(
        Effect.mapError((e) => new EmulatorError({ reason: `could not create a temporary directory: ${e.message}` }))
      ),
      // already gone (someone cleaned the temp directory) is fine: stopping never fails
      (dir) => Effect.ignore(fs.remove(dir, { recursive: true, force: true }))
    )
    const arcKeyDirectory = path.join(dir, "arc-tokens")
    yield* Effect.ignore(fs.makeDirectory(arcKeyDirectory, { recursive: true }))
    const settings: State.Settings = {
      tenantId,
      additionalTenants: options.additionalTenants ?? [],
      apps,
      users,
      identities,
      tokenLifetimeSeconds: seconds(options.tokenLifetime ?? Duration.hours(1)),
      managedIdentityTokenLifetimeSeconds: seconds(options.managedIdentityTokenLifetime ?? Duration.hours(24)),
      refreshInSeconds: options.refreshIn === undefined ? undefined : seconds(options.refreshIn),
      identityHeader: options.identityHeader === undefined
        ? `emulator-identity-header-${(yield* uuid).slice(0, 8)}`
        : reveal(options.identityHeader),
      msiSecret: options.msiSecret === undefined
        ? `emulator-msi-secret-${(yield* uuid).slice(0, 8)}`
        : reveal(options.msiSecret),
      pipelinesAccessToken: `emulator-system-access-token-${(yield* uuid).replace(/-/g, "")}`,
      pipelinesServiceConnectionId: yield* uuid,
      deviceCodeIntervalSeconds: options.deviceCodeIntervalSeconds ?? 5,
      autoApproveDeviceCodes: options.autoApproveDeviceCodes ?? false,
      arcKeyDirectory
    }

    const key = yield* Jwt.generateSigningKey
    const host = options.host ?? "127.0.0.1"
    const listenPort = options.port ?? 0
    if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535) {
      // Node throws on such a port: refuse it here, as a typed error
      return yield* new EmulatorError({
        reason: `port ${listenPort} is not a TCP port: give an integer from 0 to 65535 (0: a free port)`
      })
    }
    const scheme = options.tls === undefined ? "http" : "https"
    const tls = options.tls
    const server = yield* NodeServer.listen({
      host,
      port: listenPort,
      tls: tls === undefined ? undefined : { cert: tls.cert, key: reveal(tls.key) }
    }).pipe(
      Effect.mapError((e) =>
        new EmulatorError({
          reason: e.reason === "tls"
            // Node's reason names the PEM problem, never the key's text
            ? `the TLS certificate and key cannot be used (${e.detail}): give a PEM certificate and the PEM private ` +
              `key that matches it`
            : `could not listen on ${host}:${listenPort} (${e.detail}): choose another port`
        })
      )
    )
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const urlHost = host.includes(":") ? `[${host}]` : host
    const url = `${scheme}://${urlHost}:${port}`
    const state = State.makeState(settings, key, url)
    for (const [route, fault] of Object.entries(options.faults ?? {})) {
      if (fault !== undefined) state.faults.set(route, toFaultSpec(fault))
    }
    yield* Server.serve(server, state)

    const mintFederatedToken: Service["mintFederatedToken"] = (opts = {}) =>
      Effect.gen(function*() {
        const now = Math.floor((yield* Effect.clockWith((c) => c.currentTimeMillis)) / 1000)
        return yield* Jwt.sign(key, {
          iss: ClientAuth.federationIssuer(url),
          sub: opts.subject ?? "system:serviceaccount:default:workload",
          aud: opts.audience ?? ClientAuth.federatedAudience,
          iat: now,
          nbf: now,
          exp: now + seconds(opts.lifetime ?? Duration.hours(24)),
          jti: yield* uuid
        })
      })
    const federatedTokenFile = path.join(dir, "federated-token")
    yield* writeFile(federatedTokenFile, yield* mintFederatedToken())

    const firstApp = apps[0]!
    const firstUser = users[0]
    const systemAssigned = identities.find((i) => i.systemAssigned)
    const endpoints: Endpoints = {
      authorityHost: url,
      token: `${url}/${tenantId}/oauth2/v2.0/token`,
      deviceCode: `${url}/${tenantId}/oauth2/v2.0/devicecode`,
      authorize: `${url}/${tenantId}/oauth2/v2.0/authorize`,
      openidConfiguration: `${url}/${tenantId}/v2.0/.well-known/openid-configuration`,
      imdsHost: url,
      appService2019: `${url}${Server.paths.appService2019}`,
      msiEndpoint: `${url}${Server.paths.msiLegacy}`,
      arc: `${url}${Server.paths.arcBase}${Server.paths.imds}`,
      arcImdsEndpoint: `${url}${Server.paths.arcBase}`,
      deviceLogin: `${url}${Server.paths.devicelogin}`,
      pipelinesOidc: `${url}${Pipelines.path}`
    }
    const secretValue = firstApp.secrets[0] ?? ""
    const envFor = (scenario: Scenario): Record<string, string> => {
      const entra = {
        AZURE_AUTHORITY_HOST: url,
        AZURE_TENANT_ID: tenantId,
        AZURE_CLIENT_ID: firstApp.clientId
      }
      switch (scenario) {
        case "environment":
          return { ...entra, AZURE_CLIENT_SECRET: secretValue }
        case "workload-identity":
          return { ...entra, AZURE_FEDERATED_TOKEN_FILE: federatedTokenFile }
        case "imds":
          return { AZURE_POD_IDENTITY_AUTHORITY_HOST: url }
        case "app-service-2019":
          return { IDENTITY_ENDPOINT: endpoints.appService2019, IDENTITY_HEADER: settings.identityHeader }
        case "app-service-2017":
          return { MSI_ENDPOINT: endpoints.msiEndpoint, MSI_SECRET: settings.msiSecret }
        case "cloud-shell":
          return { MSI_ENDPOINT: endpoints.msiEndpoint }
        case "azure-arc":
          return { IDENTITY_ENDPOINT: endpoints.arc, IMDS_ENDPOINT: endpoints.arcImdsEndpoint }
        case "azure-pipelines":
          return {
            AZURE_AUTHORITY_HOST: url,
            AZURESUBSCRIPTION_TENANT_ID: tenantId,
            AZURESUBSCRIPTION_CLIENT_ID: firstApp.clientId,
            AZURESUBSCRIPTION_SERVICE_CONNECTION_ID: settings.pipelinesServiceConnectionId,
            SYSTEM_OIDCREQUESTURI: endpoints.pipelinesOidc,
            SYSTEM_ACCESSTOKEN: settings.pipelinesAccessToken
          }
        case "all":
          return {
            ...envFor("environment"),
            AZURE_FEDERATED_TOKEN_FILE: federatedTokenFile,
            ...envFor("app-service-2019"),
            ...envFor("app-service-2017"),
            ...envFor("imds")
          }
      }
    }
    const fromEnv = (env: Record<string, string>) => ConfigProvider.fromMap(new Map(Object.entries(env)))
    const env = envFor("all")

    const service: Service = {
      url,
      tenantId,
      clientId: firstApp.clientId,
      clientSecret: Redacted.make(secretValue),
      username: firstUser?.username ?? "",
      password: Redacted.make(firstUser?.password ?? ""),
      systemAssignedIdentity: systemAssigned === undefined
        ? undefined
        : { clientId: systemAssigned.clientId, objectId: systemAssigned.objectId },
      userAssignedIdentities: identities.filter((i) => !i.systemAssigned).map((i) => ({
        clientId: i.clientId,
        objectId: i.objectId,
        resourceId: i.resourceId
      })),
      endpoints,
      federatedTokenFile,
      arcKeyDirectory,
      env,
      envFor,
      configProvider: fromEnv(env),
      configProviderFor: (scenario) => fromEnv(envFor(scenario)),
      jwks: { keys: [key.publicJwk] },
      mintAuthorizationCode: (opts = {}) =>
        Effect.gen(function*() {
          const clientId = opts.clientId ?? firstApp.clientId
          if (State.findApp(state, clientId) === undefined) {
            return yield* new EmulatorError({ reason: `no app ${clientId} is registered` })
          }
          const user = State.findUser(state, opts.username)
          if (user === undefined) return yield* new EmulatorError({ reason: "no such user is registered" })
          return yield* AuthorizationCode.mintCode(state, {
            clientId,
            username: user.username,
            tenantId,
            redirectUri: opts.redirectUri,
            scopes: opts.scopes ?? [],
            codeChallenge: opts.codeChallenge,
            codeChallengeMethod: opts.codeChallengeMethod
          })
        }),
      approveDeviceCode: (userCode, username) =>
        Effect.sync(() => {
          const user = State.findUser(state, username)
          return user === undefined
            ? false
            : DeviceCode.decideDeviceCode(state, userCode, { _tag: "Approved", username: user.username })
        }),
      denyDeviceCode: (userCode) => Effect.sync(() => DeviceCode.decideDeviceCode(state, userCode, { _tag: "Denied" })),
      pendingDeviceCodes: Effect.sync(() =>
        [...state.deviceCodes.values()].filter((d) => d.status._tag === "Pending").map((d) => d.userCode)
      ),
      mintFederatedToken,
      mintUserToken: (opts = {}) =>
        Effect.gen(function*() {
          const user = State.findUser(state, opts.username)
          if (user === undefined) return yield* new EmulatorError({ reason: "no such user is registered" })
          const clientId = opts.clientId ?? State.azureCliClientId
          const issued = yield* Tokens.issueUserToken(state, {
            baseUrl: url,
            tenantId,
            app: { clientId },
            user,
            scopes: [],
            audience: opts.audience ?? firstApp.clientId,
            lifetimeSeconds: seconds(opts.lifetime ?? Duration.hours(1))
          })
          return issued.accessToken
        }),
      mintRefreshToken: (opts = {}) =>
        Effect.gen(function*() {
          const user = State.findUser(state, opts.username)
          if (user === undefined) return yield* new EmulatorError({ reason: "no such user is registered" })
          const clientId = opts.clientId ?? State.azureCliClientId
          if (State.findApp(state, clientId) === undefined) {
            return yield* new EmulatorError({ reason: `no app ${clientId} is registered` })
          }
          const refreshToken = yield* UserTokens.mintRefreshToken(state, {
            clientId,
            username: user.username,
            tenantId
          })
          return {
            refreshToken: Redacted.make(refreshToken),
            homeAccountId: `${user.objectId}.${tenantId}`,
            username: user.username
          }
        }),
      revokeRefreshTokens: (username) =>
        Effect.sync(() => {
          let n = 0
          for (const grant of state.refreshTokens.values()) {
            if (!grant.revoked && (username === undefined || grant.username === username)) {
              grant.revoked = true
              n++
            }
          }
          return n
        }),
      setFault: (route, fault) =>
        Effect.sync(() => {
          if (fault === undefined) state.faults.delete(route)
          else state.faults.set(route, toFaultSpec(fault))
        }),
      clearFaults: Effect.sync(() => state.faults.clear()),
      requests: Effect.sync(() => state.log.slice() as ReadonlyArray<RecordedRequest>),
      verifyToken: (token) =>
        Effect.gen(function*() {
          const nowMillis = yield* Effect.clockWith((c) => c.currentTimeMillis)
          const payload = yield* Effect.either(Jwt.verify(token, key.publicKey, {
            nowMillis,
            algorithms: ["RS256"]
          }))
          if (Either.isLeft(payload)) {
            return yield* new EmulatorError({ reason: `invalid token: ${payload.left.detail}` })
          }
          return payload.right
        })
    }
    return service
  })

/**
 * The emulator as a scoped layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<IdentityEmulator, EmulatorError> =>
  Layer.scoped(IdentityEmulator, make(options))

/**
 * Sets the `ConfigProvider` to the emulator's variables for a scenario (default `all`), so credential layers built
 * after it (`layerConfig()`, `DefaultAzureCredential.layer()`) read them instead of `process.env`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfigProvider = (scenario: Scenario = "all"): Layer.Layer<never, never, IdentityEmulator> =>
  Layer.unwrapEffect(Effect.map(IdentityEmulator, (e) => Layer.setConfigProvider(e.configProviderFor(scenario))))

/**
 * `export NAME='value'` lines for a shell, one per variable.
 *
 * @since 0.1.0
 * @category shell
 */
export const exportLines = (env: Readonly<Record<string, string>>): ReadonlyArray<string> =>
  Object.entries(env).map(([k, v]) => `export ${k}='${v.replace(/'/g, "'\\''")}'`)

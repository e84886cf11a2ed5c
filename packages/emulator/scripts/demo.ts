/**
 * `npm run demo`: starts the identity emulator in-process on 127.0.0.1 and gets tokens through every credential of
 * this library — client secret, certificate, client assertion, workload identity, the user flows (authorization code,
 * device code, username/password, on-behalf-of), the shared token cache, managed identity on each host kind (IMDS,
 * App Service 2019 and 2017, Cloud Shell, Azure Arc, token exchange), and `EnvironmentCredential`,
 * `DefaultAzureCredential` and a `ChainedTokenCredential` fed by the environment — then prints a table of
 * credential → outcome → time (first call, then the cached call).
 *
 * Exits 0 when every expected token was obtained and every expected failure failed with the expected error; else 1.
 * Touches no address but 127.0.0.1 (the emulator), and no real environment variable: each credential reads the
 * emulator's variables through a `ConfigProvider`.
 */
import {
  AuthorizationCodeCredential,
  AzurePipelinesCredential,
  AzurePowerShellCredential,
  CertificateCredential,
  ChainedTokenCredential,
  ClientAssertionCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  DeviceCodeCredential,
  EnvironmentCredential,
  InteractiveBrowserCredential,
  ManagedIdentityCredential,
  OnBehalfOfCredential,
  SharedTokenCacheCredential,
  TokenCredential,
  UsernamePasswordCredential,
  WorkloadIdentityCredential
} from "effect-azure-identity"
import * as IdentityNode from "effect-azure-identity/node"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { makeSelfSigned } from "../../../test/support/tls.js"
import * as IdentityEmulator from "../src/IdentityEmulator.js"

const SCOPE = "https://vault.azure.net/.default"

interface Row {
  readonly credential: string
  readonly via: string
  readonly outcome: string
  readonly ok: boolean
  readonly first: string
  readonly cached: string
}

type Expectation = { readonly _tag: "Token" } | { readonly _tag: "Failure"; readonly mentions: string }
const token: Expectation = { _tag: "Token" }
const failure = (mentions: string): Expectation => ({ _tag: "Failure", mentions })

interface Case {
  readonly credential: string
  readonly via: string
  readonly layer: Layer.Layer<TokenCredential.TokenCredential, never, Layer.Layer.Success<typeof IdentityNode.layer>>
  readonly env?: Readonly<Record<string, string>>
  readonly scope?: string
  readonly expect: Expectation
}

const ms = (start: number) => `${(performance.now() - start).toFixed(1)} ms`

const run = (c: Case): Effect.Effect<Row> =>
  Effect.gen(function*() {
    const scope = c.scope ?? SCOPE
    const start = performance.now()
    const first = yield* Effect.either(TokenCredential.getToken(scope))
    const firstTime = ms(start)
    if (first._tag === "Left") {
      const ok = c.expect._tag === "Failure" && first.left.message.includes(c.expect.mentions)
      const message = first.left.message.split("\n")[0]!
      return {
        credential: c.credential,
        via: c.via,
        outcome: `${ok ? "expected " : ""}${first.left._tag}: ${
          message.length > 110 ? message.slice(0, 110) + "…" : message
        }`,
        ok,
        first: firstTime,
        cached: ""
      }
    }
    const again = performance.now()
    const second = yield* Effect.either(TokenCredential.getToken(scope))
    const cached = ms(again)
    const expiresIn = Math.round((first.right.expiresOn.epochMillis - Date.now()) / 60_000)
    return {
      credential: c.credential,
      via: c.via,
      outcome: `token (${Redacted.value(first.right.token).length} chars, expires in ${expiresIn} min)` +
        (second._tag === "Left" ? `, but the second call failed: ${second.left._tag}` : ""),
      // the second call must succeed too (from the cache): a token the first time only is not a pass
      ok: c.expect._tag === "Token" && second._tag === "Right",
      first: firstTime,
      cached
    }
  }).pipe(
    Effect.provide(c.layer.pipe(Layer.provide(IdentityNode.layer))),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(c.env ?? {})))),
    // the table is the output: keep the credentials' warnings (e.g. the password grant's deprecation) out of it
    Logger.withMinimumLogLevel(LogLevel.Error),
    Effect.catchAllDefect((defect) =>
      Effect.succeed({
        credential: c.credential,
        via: c.via,
        outcome: `defect: ${String(defect)}`,
        ok: false,
        first: "",
        cached: ""
      })
    )
  )

const print = (rows: ReadonlyArray<Row>) => {
  const header: Row = {
    credential: "credential",
    via: "via",
    outcome: "outcome",
    ok: true,
    first: "first call",
    cached: "cached"
  }
  const all = [header, ...rows]
  const w = (k: "credential" | "via" | "first" | "cached") => Math.max(...all.map((r) => r[k].length))
  for (const r of all) {
    console.log(
      `${r === header ? "  " : r.ok ? "✓ " : "✗ "}${r.credential.padEnd(w("credential"))}  ${r.via.padEnd(w("via"))}  ${
        r.first.padStart(w("first"))
      }  ${r.cached.padStart(w("cached"))}  ${r.outcome}`
    )
  }
}

/**
 * An MSAL shared token cache (plaintext, as MSAL's Linux fallback writes it) holding one account and a refresh token
 * the emulator minted for the Azure CLI's app id, as `az login` would leave behind.
 */
const writeSharedTokenCache = (emulator: IdentityEmulator.Service) =>
  Effect.gen(function*() {
    const minted = yield* emulator.mintRefreshToken()
    const environment = new URL(emulator.url).host
    const clientId = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
    const home = minted.homeAccountId
    const cache = {
      Account: {
        [`${home}-${environment}-${emulator.tenantId}`]: {
          home_account_id: home,
          environment,
          realm: emulator.tenantId,
          local_account_id: home.split(".")[0],
          username: minted.username,
          authority_type: "MSSTS"
        }
      },
      RefreshToken: {
        [`${home}-${environment}-refreshtoken-${clientId}--`]: {
          credential_type: "RefreshToken",
          secret: Redacted.value(minted.refreshToken),
          home_account_id: home,
          environment,
          client_id: clientId,
          target: ""
        }
      },
      AccessToken: {},
      IdToken: {},
      AppMetadata: {}
    }
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "demo-msal-cache-"))),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    const file = path.join(dir, "msal.cache")
    fs.writeFileSync(file, JSON.stringify(cache), { mode: 0o600 })
    return file
  })

const main = Effect.gen(function*() {
  const appCertificate = yield* Effect.promise(() => makeSelfSigned({ commonName: "demo-app" }))
  const strangerCertificate = yield* Effect.promise(() => makeSelfSigned({ commonName: "not-registered" }))
  const secret = "demo-client-secret"
  const emulator = yield* IdentityEmulator.make({
    apps: [
      {
        clientId: IdentityEmulator.defaultClientId,
        displayName: "demo-app",
        secrets: [secret],
        certificates: [appCertificate.certPem],
        publicClient: true
      }
    ],
    users: [{ username: "ada@emulator.test", password: "demo-password" }],
    deviceCodeIntervalSeconds: 1
  })
  const { clientId, tenantId, url: authorityHost } = emulator
  const pem = appCertificate.certPem + appCertificate.keyPem
  const userAssigned = emulator.userAssignedIdentities[0]!
  const redirectUri = "http://localhost:8400/callback"
  const code = yield* emulator.mintAuthorizationCode({ redirectUri, scopes: [SCOPE, "offline_access"] })
  const incomingUserToken = yield* emulator.mintUserToken({ audience: clientId })
  const arc = { azureArc: { keyDirectory: emulator.arcKeyDirectory } }
  const sharedCache = yield* writeSharedTokenCache(emulator)

  const cases: Array<Case> = [
    {
      credential: "ClientSecretCredential",
      via: "options",
      layer: ClientSecretCredential.layer({ tenantId, clientId, clientSecret: Redacted.make(secret), authorityHost }),
      expect: token
    },
    {
      credential: "ClientSecretCredential",
      via: "AZURE_* environment",
      layer: ClientSecretCredential.layerConfig(),
      env: emulator.envFor("environment"),
      expect: token
    },
    {
      credential: "ClientSecretCredential",
      via: "wrong secret",
      layer: ClientSecretCredential.layer({
        tenantId,
        clientId,
        clientSecret: Redacted.make("not-the-secret"),
        authorityHost
      }),
      expect: failure("AADSTS7000215")
    },
    {
      credential: "CertificateCredential",
      via: "PS256 + x5t#S256",
      layer: CertificateCredential.layer({ tenantId, clientId, certificate: Redacted.make(pem), authorityHost }),
      expect: token
    },
    {
      credential: "CertificateCredential",
      via: "RS256 + x5t",
      layer: CertificateCredential.layer({
        tenantId,
        clientId,
        certificate: Redacted.make(pem),
        signingAlgorithm: "RS256",
        authorityHost
      }),
      expect: token
    },
    {
      credential: "CertificateCredential",
      via: "unregistered certificate",
      layer: CertificateCredential.layer({
        tenantId,
        clientId,
        certificate: Redacted.make(strangerCertificate.certPem + strangerCertificate.keyPem),
        authorityHost
      }),
      expect: failure("AADSTS700027")
    },
    {
      credential: "ClientAssertionCredential",
      via: "federated assertion",
      layer: ClientAssertionCredential.layer({
        tenantId,
        clientId,
        getAssertion: emulator.mintFederatedToken(),
        authorityHost
      }),
      expect: token
    },
    {
      credential: "WorkloadIdentityCredential",
      via: "AZURE_FEDERATED_TOKEN_FILE",
      layer: WorkloadIdentityCredential.layerConfig(),
      env: emulator.envFor("workload-identity"),
      expect: token
    },
    {
      credential: "AuthorizationCodeCredential",
      via: "code + secret",
      layer: AuthorizationCodeCredential.layer({
        tenantId,
        clientId,
        authorizationCode: Redacted.make(code),
        redirectUri,
        clientSecret: Redacted.make(secret),
        authorityHost
      }),
      expect: token
    },
    {
      credential: "AuthorizationCodeCredential",
      via: "same code again",
      layer: AuthorizationCodeCredential.layer({
        tenantId,
        clientId,
        authorizationCode: Redacted.make(code),
        redirectUri,
        clientSecret: Redacted.make(secret),
        authorityHost
      }),
      expect: failure("AADSTS54005")
    },
    {
      credential: "DeviceCodeCredential",
      via: "approved in the emulator",
      layer: DeviceCodeCredential.layer({
        tenantId,
        clientId,
        authorityHost,
        prompt: (info) => Effect.asVoid(emulator.approveDeviceCode(info.userCode))
      }),
      expect: token
    },
    {
      credential: "InteractiveBrowserCredential",
      via: "sign-in page → loopback listener",
      // the demo's "browser" asks the emulator's sign-in page for the hinted user (prompt=none) and follows its
      // redirect to the credential's listener on localhost, as a browser would after the user signed in
      layer: InteractiveBrowserCredential.layer({
        tenantId,
        clientId,
        authorityHost,
        loginHint: "ada@emulator.test",
        prompt: "none"
      }).pipe(
        Layer.provide(Layer.succeed(InteractiveBrowserCredential.BrowserOpener, {
          open: (url) =>
            Effect.sync(() => {
              void fetch(url).catch(() => undefined)
            })
        }))
      ),
      expect: token
    },
    {
      credential: "UsernamePasswordCredential",
      via: "password grant",
      layer: UsernamePasswordCredential.layer({
        tenantId,
        clientId,
        username: "ada@emulator.test",
        password: Redacted.make("demo-password"),
        authorityHost
      }),
      expect: token
    },
    {
      credential: "OnBehalfOfCredential",
      via: "user assertion + secret",
      layer: OnBehalfOfCredential.layer({
        tenantId,
        clientId,
        userAssertionToken: Redacted.make(incomingUserToken),
        clientSecret: Redacted.make(secret),
        authorityHost
      }),
      expect: token
    },
    {
      credential: "SharedTokenCacheCredential",
      via: "MSAL cache written by the demo",
      layer: SharedTokenCacheCredential.layer({ cachePath: sharedCache, authorityHost, tenantId }),
      expect: token
    },
    {
      credential: "ManagedIdentityCredential",
      via: "IMDS (system-assigned)",
      layer: ManagedIdentityCredential.layer(),
      env: emulator.envFor("imds"),
      expect: token
    },
    {
      credential: "ManagedIdentityCredential",
      via: "IMDS (user-assigned)",
      layer: ManagedIdentityCredential.layer({ clientId: userAssigned.clientId }),
      env: emulator.envFor("imds"),
      expect: token
    },
    {
      credential: "ManagedIdentityCredential",
      via: "App Service 2019",
      layer: ManagedIdentityCredential.layer(),
      env: emulator.envFor("app-service-2019"),
      expect: token
    },
    {
      credential: "ManagedIdentityCredential",
      via: "App Service 2017",
      layer: ManagedIdentityCredential.layer(),
      env: emulator.envFor("app-service-2017"),
      expect: token
    },
    {
      credential: "ManagedIdentityCredential",
      via: "Cloud Shell",
      layer: ManagedIdentityCredential.layer(),
      env: emulator.envFor("cloud-shell"),
      expect: token
    },
    {
      credential: "ManagedIdentityCredential",
      via: "Azure Arc",
      layer: ManagedIdentityCredential.layer(arc),
      env: emulator.envFor("azure-arc"),
      expect: token
    },
    {
      credential: "ManagedIdentityCredential",
      via: "workload identity (token exchange)",
      layer: ManagedIdentityCredential.layerConfig(),
      env: emulator.envFor("workload-identity"),
      expect: token
    },
    {
      credential: "EnvironmentCredential",
      via: "AZURE_CLIENT_SECRET",
      layer: EnvironmentCredential.layer(),
      env: emulator.envFor("environment"),
      expect: token
    },
    {
      credential: "DefaultAzureCredential",
      via: "environment → EnvironmentCredential",
      layer: DefaultAzureCredential.layer(),
      env: emulator.envFor("environment"),
      expect: token
    },
    {
      credential: "DefaultAzureCredential",
      via: "workload identity",
      layer: DefaultAzureCredential.layer(),
      env: emulator.envFor("workload-identity"),
      expect: token
    },
    {
      credential: "DefaultAzureCredential",
      via: "App Service → ManagedIdentityCredential",
      layer: DefaultAzureCredential.layer(),
      env: emulator.envFor("app-service-2019"),
      expect: token
    },
    {
      credential: "AzurePipelinesCredential",
      via: "service connection (OIDC endpoint)",
      layer: AzurePipelinesCredential.layerConfig(),
      env: emulator.envFor("azure-pipelines"),
      expect: token
    },
    {
      credential: "AzurePowerShellCredential",
      via: "no pwsh at the given path",
      // the demo never runs a PowerShell that may be installed here: it shows the "not installed" answer
      layer: AzurePowerShellCredential.layer({ executable: path.join(path.dirname(sharedCache), "no-such-pwsh") }),
      expect: failure("was not found")
    },
    {
      credential: "DefaultAzureCredential",
      via: "wrong secret stops the chain",
      layer: DefaultAzureCredential.layer(),
      env: { ...emulator.envFor("environment"), AZURE_CLIENT_SECRET: "not-the-secret" },
      expect: failure("AADSTS7000215")
    },
    {
      credential: "DefaultAzureCredential",
      via: "nothing usable (prod links)",
      layer: DefaultAzureCredential.layer(),
      env: {
        AZURE_TOKEN_CREDENTIALS: "prod",
        AZURE_CLIENT_ID: "00000000-0000-4000-8000-00000000dead",
        ...emulator.envFor("imds")
      },
      expect: failure("found no credential")
    },
    {
      credential: "ChainedTokenCredential",
      via: "managed identity → client secret",
      layer: ChainedTokenCredential.layer(ManagedIdentityCredential.layer(), ClientSecretCredential.layerConfig()),
      env: { ...emulator.envFor("environment"), IDENTITY_ENDPOINT: `${authorityHost}/nothing-here` },
      expect: token
    }
  ]

  console.log(`identity emulator on ${emulator.url} (loopback only), tenant ${tenantId}\n`)
  const rows: Array<Row> = []
  for (const c of cases) rows.push(yield* run(c))
  print(rows)
  const tokens = rows.filter((r) => r.ok && r.outcome.startsWith("token")).length
  const expectedFailures = rows.filter((r) => r.ok && !r.outcome.startsWith("token")).length
  const unexpected = rows.filter((r) => !r.ok)
  const requests = yield* emulator.requests
  console.log(
    `\n${tokens} tokens obtained, ${expectedFailures} expected failures shown, ${unexpected.length} unexpected; ` +
      `the emulator answered ${requests.length} requests`
  )
  return unexpected.length === 0
})

Effect.runPromise(Effect.scoped(main)).then(
  (ok) => process.exit(ok ? 0 : 1),
  (error) => {
    console.error(error instanceof Error ? error.message : String(error))
    process.exit(1)
  }
)

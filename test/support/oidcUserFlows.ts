/**
 * A real third-party OAuth 2.0 / OpenID Connect server for the user-flow integration tests: `oidc-provider` (v9, by
 * panva) on 127.0.0.1 (random port), started inside the test's scope and stopped with it.
 *
 * - Endpoints in the Entra shape: `/{tenant}/oauth2/v2.0/authorize`, `/{tenant}/oauth2/v2.0/token`,
 *   `/{tenant}/oauth2/v2.0/devicecode`; the device verification page stays at `/device`.
 * - Scopes: the OpenID ones plus two API scopes `api.read` and `api.write` (opaque access tokens, read back from the
 *   server's own store with `findAccessToken`). Refresh tokens are rotated on every use, and oidc-provider revokes
 *   the whole grant when a rotated (consumed) refresh token is presented again, or a code is redeemed twice.
 * - Sign-in and consent: instead of HTML login pages, `interactions.url` points at `/interaction/{uid}`, answered by
 *   a handler of this file that calls `provider.interactionFinished` (login as `alice`, then consent to everything
 *   asked, or `access_denied` when `decision` is `"deny"`). The test drives everything else with plain HTTP requests
 *   and a cookie jar, as a browser would: `authorize()` returns a real authorization code, `approveDeviceCode()`
 *   enters a user code on the verification page and confirms it.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto"
import * as http from "node:http"
import type * as net from "node:net"

export const WEB_CLIENT = "web-app"
export const WEB_SECRET = "web-app-client-secret-value"
export const DEVICE_CLIENT = "device-app"
export const REDIRECT_URI = "http://127.0.0.1/auth/callback"

export interface TokenEvent {
  readonly grantType: string
  /** The OAuth error the server answered with, when it did. */
  readonly error: string | undefined
}

export interface IssuedAccessToken {
  readonly scope: string
  readonly accountId: string
  readonly clientId: string
}

export interface UserFlowServer {
  /** `http://127.0.0.1:{port}`: the authority host to give credentials. */
  readonly url: string
  readonly tenant: string
  /** Every token endpoint request the server handled, in order. */
  readonly tokenEvents: Array<TokenEvent>
  /** Resolves once the server has handled `count` token endpoint requests in all. */
  readonly tokenRequestsHandled: (count: number) => Promise<void>
  /** Signs `alice` in through the authorization endpoint and consents; returns the code from the redirect. */
  readonly authorize: (options: {
    readonly scope: string
    readonly codeVerifier?: string
    readonly redirectUri?: string
  }) => Promise<string>
  /** Enters `userCode` on the verification page, confirms it, signs in and consents (or declines). */
  readonly approveDeviceCode: (userCode: string) => Promise<void>
  /** What the next sign-in does. */
  decision: "allow" | "deny"
  readonly findAccessToken: (token: string) => Promise<IssuedAccessToken | undefined>
  /** Revokes every grant the server issued: their refresh tokens stop working. */
  readonly revokeAllGrants: () => Promise<void>
}

// oidc-provider ships no type declarations: load it untyped, through a non-literal specifier
const moduleName: string = "oidc-provider"

/** A minimal cookie jar: names and values, whatever their path (each flow uses its own jar). */
const makeJar = () => {
  const cookies = new Map<string, string>()
  return {
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join("; "),
    store: (response: Response) => {
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(";")
        const eq = pair!.indexOf("=")
        const name = pair!.slice(0, eq).trim()
        const value = pair!.slice(eq + 1).trim()
        if (/expires=Thu, 01 Jan 1970/i.test(line) || value === "") cookies.delete(name)
        else cookies.set(name, value)
      }
    }
  }
}

type Jar = ReturnType<typeof makeJar>

/** One request with the jar's cookies, redirects not followed. */
const send = async (jar: Jar, url: string, init: { method?: string; form?: Record<string, string> } = {}) => {
  const response = await fetch(url, {
    method: init.method ?? (init.form ? "POST" : "GET"),
    redirect: "manual",
    headers: {
      cookie: jar.header(),
      ...(init.form ? { "content-type": "application/x-www-form-urlencoded" } : {})
    },
    ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {})
  })
  jar.store(response)
  return response
}

/** Follows redirects (with cookies) until `stop` says so, or a non-redirect answer. */
const follow = async (
  jar: Jar,
  first: Response,
  base: string,
  stop: (location: URL) => boolean
): Promise<{ readonly location: URL | undefined; readonly response: Response }> => {
  let response = first
  for (let hops = 0; hops < 20; hops++) {
    if (response.status < 300 || response.status >= 400) return { location: undefined, response }
    const location = new URL(response.headers.get("location")!, base)
    if (stop(location)) return { location, response }
    await response.arrayBuffer()
    response = await send(jar, location.href)
  }
  throw new Error("too many redirects")
}

export const startUserFlowServer = (options: {
  readonly tenant: string
  /** Access token lifetime in seconds (default 3600). */
  readonly accessTokenTtl?: number
}): Effect.Effect<UserFlowServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const { default: Provider } = (await import(moduleName)) as { default: any }
      const serverKey = {
        ...(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" })),
        kid: "oidc-user-flows",
        use: "sig"
      }
      const sockets = new Set<net.Socket>()
      let handler: http.RequestListener = (_req, res) => {
        res.statusCode = 503
        res.end()
      }
      const server = http.createServer((req, res) => handler(req, res))
      server.on("connection", (s) => {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const port = (server.address() as net.AddressInfo).port
      const url = `http://127.0.0.1:${port}`
      const base = `/${options.tenant}/oauth2/v2.0`
      const provider = new Provider(url, {
        clients: [
          {
            client_id: WEB_CLIENT,
            client_secret: WEB_SECRET,
            token_endpoint_auth_method: "client_secret_post",
            grant_types: ["authorization_code", "refresh_token"],
            response_types: ["code"],
            redirect_uris: [REDIRECT_URI, "http://127.0.0.1/other/callback"]
          },
          {
            client_id: DEVICE_CLIENT,
            token_endpoint_auth_method: "none",
            grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            response_types: [],
            redirect_uris: []
          }
        ],
        jwks: { keys: [serverKey] },
        cookies: { keys: ["effect-azure-identity-user-flows-cookie-key"] },
        scopes: ["openid", "offline_access", "profile", "api.read", "api.write"],
        claims: { openid: ["sub"], profile: ["name"] },
        findAccount: async (_ctx: unknown, sub: string) => ({
          accountId: sub,
          claims: async () => ({ sub, name: "Alice" })
        }),
        features: {
          devInteractions: { enabled: false },
          deviceFlow: { enabled: true },
          revocation: { enabled: false },
          introspection: { enabled: false }
        },
        interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
        routes: {
          authorization: `${base}/authorize`,
          token: `${base}/token`,
          device_authorization: `${base}/devicecode`,
          jwks: `/${options.tenant}/discovery/v2.0/keys`
        },
        // every refresh rotates the refresh token (a consumed one presented again revokes the grant)
        rotateRefreshToken: () => true,
        // the device flow has no `prompt=consent`; issue refresh tokens whenever offline_access was granted
        issueRefreshToken: async (_ctx: unknown, client: any, code: any) =>
          client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
        ttl: {
          AccessToken: options.accessTokenTtl ?? 3600,
          AuthorizationCode: 600,
          DeviceCode: 600,
          RefreshToken: 86_400,
          Grant: 86_400,
          Interaction: 600,
          Session: 86_400
        }
      })

      const tokenEvents: Array<TokenEvent> = []
      const waiters: Array<{ count: number; resolve: () => void }> = []
      const recordToken = (ctx: any, error?: { error?: string }) => {
        tokenEvents.push({ grantType: String(ctx?.oidc?.params?.grant_type ?? ""), error: error?.error })
        for (const w of waiters.splice(0)) {
          if (tokenEvents.length >= w.count) w.resolve()
          else waiters.push(w)
        }
      }
      provider.on("grant.success", (ctx: unknown) => recordToken(ctx))
      provider.on("grant.error", (ctx: unknown, error: any) => recordToken(ctx, error))
      const grantIds = new Set<string>()
      provider.on("grant.saved", (grant: { jti: string }) => grantIds.add(grant.jti))

      const state = { decision: "allow" as "allow" | "deny" }

      const interaction = async (req: http.IncomingMessage, res: http.ServerResponse) => {
        try {
          const details = await provider.interactionDetails(req, res)
          if (state.decision === "deny") {
            await provider.interactionFinished(req, res, {
              error: "access_denied",
              error_description: "End-User aborted interaction"
            }, { mergeWithLastSubmission: false })
            return
          }
          if (details.prompt.name === "login") {
            await provider.interactionFinished(req, res, { login: { accountId: "alice" } }, {
              mergeWithLastSubmission: false
            })
            return
          }
          const grant = details.grantId
            ? await provider.Grant.find(details.grantId)
            : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id })
          const missing = details.prompt.details
          if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "))
          if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims)
          if (missing.missingResourceScopes) {
            for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
              grant.addResourceScope(indicator, (scope as Array<string>).join(" "))
            }
          }
          const grantId = await grant.save()
          await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true })
        } catch (error) {
          res.statusCode = 500
          res.end(String(error))
        }
      }

      const callback = provider.callback()
      handler = (req, res) => {
        if ((req.url ?? "").startsWith("/interaction/")) void interaction(req, res)
        else callback(req, res)
      }

      const authorize: UserFlowServer["authorize"] = async (o) => {
        const jar = makeJar()
        const redirectUri = o.redirectUri ?? REDIRECT_URI
        const query = new URLSearchParams({
          client_id: WEB_CLIENT,
          response_type: "code",
          redirect_uri: redirectUri,
          scope: o.scope,
          prompt: "consent",
          state: randomBytes(8).toString("hex"),
          ...(o.codeVerifier !== undefined
            ? {
              code_challenge: createHash("sha256").update(o.codeVerifier).digest("base64url"),
              code_challenge_method: "S256"
            }
            : {})
        })
        const first = await send(jar, `${url}${base}/authorize?${query}`)
        const { location, response } = await follow(jar, first, url, (l) => l.href.startsWith(redirectUri))
        if (location === undefined) {
          throw new Error(`authorization ended without a redirect: HTTP ${response.status} ${await response.text()}`)
        }
        const code = location.searchParams.get("code")
        if (code === null) throw new Error(`authorization failed: ${location.searchParams.get("error")}`)
        return code
      }

      const approveDeviceCode: UserFlowServer["approveDeviceCode"] = async (userCode) => {
        const jar = makeJar()
        const page = await send(jar, `${url}/device`)
        const html = await page.text()
        const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1]
        if (xsrf === undefined) throw new Error("no xsrf field on the device page")
        const confirmed = await send(jar, `${url}/device`, { form: { xsrf, user_code: userCode, confirm: "yes" } })
        const { response } = await follow(jar, confirmed, url, () => false)
        const text = await response.text()
        if (response.status !== 200) throw new Error(`device approval failed: HTTP ${response.status} ${text}`)
      }

      const serverInfo: UserFlowServer = {
        url,
        tenant: options.tenant,
        tokenEvents,
        tokenRequestsHandled: (count) =>
          tokenEvents.length >= count
            ? Promise.resolve()
            : new Promise<void>((resolve) => waiters.push({ count, resolve })),
        authorize,
        approveDeviceCode,
        get decision() {
          return state.decision
        },
        set decision(d) {
          state.decision = d
        },
        findAccessToken: async (token) => {
          const found = await provider.AccessToken.find(token)
          return found === undefined
            ? undefined
            : { scope: found.scope, accountId: found.accountId, clientId: found.clientId }
        },
        revokeAllGrants: async () => {
          for (const id of grantIds) {
            const grant = await provider.Grant.find(id)
            if (grant) await grant.destroy()
          }
        }
      }
      return { server, sockets, info: serverInfo }
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ info }) => info))

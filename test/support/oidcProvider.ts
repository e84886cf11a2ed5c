/**
 * A real third-party OAuth 2.0 / OpenID Connect server for client-credentials integration tests: `oidc-provider`
 * (OpenID-certified, by panva), started on 127.0.0.1 (random port) inside the test's scope and stopped with it.
 *
 * The token endpoint is routed to `/{tenant}/oauth2/v2.0/token`, the Entra shape, so a credential pointed at
 * `authorityHost: server.url` posts to it unchanged. `private_key_jwt` assertions are accepted when their `aud` is
 * that exact URL (oidc-provider accepts the token endpoint URL or the issuer), their `iss` is the client id, their
 * signature verifies with the client's registered JWK, and their `jti` was never used before (replay detection).
 *
 * Scopes: without a resource indicator (RFC 8707 `resource` parameter, which Entra's v2 endpoint does not use: the
 * resource is inside the scope) oidc-provider drops every scope that is not one of its static OpenID scopes. So the
 * server is configured the Entra way: `defaultResource` derives the resource from a `{resource}/.default` scope of the
 * request (`api://effect-azure-identity/.default` → `api://effect-azure-identity`), and `getResourceServerInfo`
 * declares that resource server with the single scope `{resource}/.default`. The token is then granted with exactly
 * that scope and audience, and tests read both back from the server's own token store (`findToken`). A scope not in
 * that shape is refused with `invalid_target` / `invalid_scope`, as Entra refuses it with AADSTS70011.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { generateKeyPairSync } from "node:crypto"
import * as http from "node:http"
import type * as net from "node:net"

/** What tests read from a token the server issued (oidc-provider's `ClientCredentials` model). */
export interface IssuedToken {
  readonly clientId: string
  readonly scope: string | undefined
  /** The resource (audience) the token was issued for. */
  readonly audience: string | undefined
  readonly kind: string
}

/** A client registration (oidc-provider client metadata, snake_case as in RFC 7591). */
export interface ClientRegistration {
  readonly client_id: string
  readonly token_endpoint_auth_method: "private_key_jwt" | "client_secret_post" | "client_secret_basic"
  readonly client_secret?: string
  /** For `private_key_jwt`: the public keys assertions are verified with. */
  readonly jwks?: { readonly keys: ReadonlyArray<Record<string, unknown>> }
  /** Restrict the accepted signing algorithm (e.g. `"RS256"`); by default RS256 and PS256 are both accepted. */
  readonly token_endpoint_auth_signing_alg?: string
}

export interface OidcServer {
  /** `http://127.0.0.1:{port}`: the authority host to give credentials. */
  readonly url: string
  readonly tenant: string
  /** `{url}/{tenant}/oauth2/v2.0/token` */
  readonly tokenEndpoint: string
  /** Every token request the server handled: its path, the parameters oidc-provider parsed, the status it answered. */
  readonly requests: Array<
    { readonly path: string; readonly form: Record<string, string>; readonly status: number | undefined }
  >
  /** Looks an issued access token up in the server's own store. */
  readonly findToken: (accessToken: string) => Promise<IssuedToken | undefined>
  /** The error events oidc-provider emitted (e.g. why a client authentication failed). */
  readonly errors: Array<string>
}

// oidc-provider ships no type declarations: load it untyped, through a non-literal specifier
const moduleName: string = "oidc-provider"

/**
 * Starts oidc-provider for a tenant with the given clients. Everything runs on 127.0.0.1; the server is closed when
 * the scope closes.
 */
export const startOidcProvider = (options: {
  readonly tenant: string
  readonly clients: ReadonlyArray<ClientRegistration>
  /** Access token lifetime in seconds (default 3600). */
  readonly accessTokenTtl?: number
}): Effect.Effect<OidcServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const { default: Provider } = (await import(moduleName)) as { default: any }
      // the server's own signing key (unused by client credentials with opaque tokens; given so none is generated)
      const serverKey = {
        ...(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" })),
        kid: "oidc-test",
        use: "sig"
      }
      const sockets = new Set<net.Socket>()
      const requests: OidcServer["requests"] = []
      const errors: Array<string> = []
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
      const tokenPath = `/${options.tenant}/oauth2/v2.0/token`
      const provider = new Provider(url, {
        clients: options.clients.map((c) => ({
          grant_types: ["client_credentials"],
          response_types: [],
          redirect_uris: [],
          ...c
        })),
        clientAuthMethods: ["private_key_jwt", "client_secret_post", "client_secret_basic"],
        jwks: { keys: [serverKey] },
        features: {
          clientCredentials: { enabled: true },
          resourceIndicators: {
            enabled: true,
            defaultResource: (ctx: any) => {
              const scopes = String(ctx.oidc.params.scope ?? "").split(" ")
              const scope = scopes.find((s) => s.endsWith("/.default"))
              return scope === undefined ? undefined : scope.slice(0, -"/.default".length)
            },
            getResourceServerInfo: (_ctx: unknown, resource: string) => ({
              scope: `${resource}/.default`,
              audience: resource,
              accessTokenFormat: "opaque"
            }),
            useGrantedResource: () => false
          },
          devInteractions: { enabled: false },
          introspection: { enabled: false },
          revocation: { enabled: false }
        },
        routes: {
          token: tokenPath,
          jwks: `/${options.tenant}/discovery/v2.0/keys`
        },
        ttl: { ClientCredentials: options.accessTokenTtl ?? 3600 },
        // a fixed key set for the server's own signatures: none are made in client-credentials tests, but
        // oidc-provider would otherwise warn about generating one
        cookies: { keys: ["effect-azure-identity-test-cookie-key"] }
      })
      const record = (ctx: any, error?: { name?: string; message?: string; error_description?: string }) => {
        const params = (ctx?.oidc?.params ?? {}) as Record<string, unknown>
        const form: Record<string, string> = {}
        for (const [k, v] of Object.entries(params)) if (typeof v === "string") form[k] = v
        const description = error === undefined
          ? undefined
          : `${error.name ?? "Error"}: ${error.error_description ?? error.message ?? ""}`
        requests.push({
          path: String(ctx?.path ?? ""),
          form,
          status: error === undefined ? 200 : (error as any).statusCode ?? (error as any).status
        })
        if (description !== undefined) errors.push(description)
      }
      provider.on("grant.success", (ctx: unknown) => record(ctx))
      provider.on("grant.error", (ctx: unknown, error: any) => record(ctx, error))
      provider.on("server_error", (ctx: unknown, error: any) => record(ctx, error))
      handler = provider.callback()
      const findToken = async (accessToken: string): Promise<IssuedToken | undefined> => {
        const token = await provider.ClientCredentials.find(accessToken)
        return token === undefined
          ? undefined
          : { clientId: token.clientId, scope: token.scope, audience: token.aud, kind: token.kind }
      }
      return {
        server,
        sockets,
        info: { url, tenant: options.tenant, tokenEndpoint: `${url}${tokenPath}`, requests, findToken, errors }
      }
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ info }) => info))

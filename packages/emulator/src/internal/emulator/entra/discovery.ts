/**
 * Discovery: the tenant's OpenID configuration and the signing keys tokens verify with.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import { baseUrl, entraResponse, json } from "../http.js"
import type { State } from "../state.js"
import { issuer } from "../tokens.js"
import { resolveTenant } from "./common.js"

/** `GET /{tenant}/v2.0/.well-known/openid-configuration`. @internal */
export const openidConfiguration = (state: State) =>
  Effect.gen(function*() {
    const segment = (yield* HttpRouter.params).tenant ?? ""
    const tenantId = yield* resolveTenant(state, segment)
    const url = yield* baseUrl(state)
    const base = `${url}/${segment}`
    const lower = segment.toLowerCase()
    const multi = lower === "common" || lower === "organizations" || lower === "consumers"
    return json(200, {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ["query", "fragment", "form_post"],
      subject_types_supported: ["pairwise"],
      id_token_signing_alg_values_supported: ["RS256"],
      response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
      scopes_supported: ["openid", "profile", "email", "offline_access"],
      issuer: multi ? `${url}/{tenantid}/v2.0` : issuer(url, tenantId),
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${url}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "nbf",
        "auth_time",
        "name",
        "nonce",
        "preferred_username",
        "oid",
        "tid",
        "ver"
      ],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: null,
      cloud_instance_name: "microsoftonline.com",
      cloud_graph_host_name: "graph.windows.net",
      msgraph_host: "graph.microsoft.com",
      rbac_url: "https://pas.windows.net"
    })
  }).pipe(Effect.catchAll((e) => entraResponse(state, e)))

/** `GET /{tenant}/discovery/v2.0/keys`: the key the emulator signs tokens with. @internal */
export const keys = (state: State) => Effect.succeed(json(200, { keys: [state.key.publicJwk] }))

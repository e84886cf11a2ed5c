/**
 * The raw client the bench compares with: `http(s).request` on a keep-alive `Agent` with one socket, posting the
 * client-credentials form to the token endpoint and keeping the tokens in a `Map` — what a hand-written client does,
 * and nothing more. Used by `bench/run.ts` (https) and `bench/scopesProfile.ts` (http).
 */
import * as http from "node:http"
import * as https from "node:https"

export const makeRawClient = (options: {
  readonly protocol: "http" | "https"
  readonly port: number
  readonly tenant: string
  readonly clientId: string
  readonly clientSecret: string
}) => {
  const lib = options.protocol === "https" ? https : http
  const agent = new lib.Agent({ keepAlive: true, maxSockets: 1 })
  const tokens = new Map<string, { token: string; expiresOnMillis: number }>()
  const post = (scope: string) =>
    new Promise<void>((resolve, reject) => {
      const body = new URLSearchParams({
        client_id: options.clientId,
        client_secret: options.clientSecret,
        grant_type: "client_credentials",
        scope
      }).toString()
      const req = lib.request({
        host: "127.0.0.1",
        port: options.port,
        method: "POST",
        path: `/${options.tenant}/oauth2/v2.0/token`,
        agent,
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) }
      }, (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (c) => (text += c))
        res.on("end", () => {
          const json = JSON.parse(text)
          tokens.set(scope, { token: json.access_token, expiresOnMillis: Date.now() + json.expires_in * 1000 })
          resolve()
        })
      })
      req.on("error", reject)
      req.end(body)
    })
  return { post, tokens, close: () => agent.destroy() }
}

/**
 * A loopback token endpoint for the fleet tests and benchmark: answers every `POST …/oauth2/v2.0/token` with a new
 * token (`fleet-token-<n>`, one hour), counts the requests, and lets a caller wait until it has seen `n` of them.
 * `hold(n)` keeps request `n` unanswered (until its client goes away or the server closes), or until the `answer`
 * given to `onHeld` is called.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { listen, sendJson } from "./loopbackServer.js"

export interface TokenServer {
  readonly url: string
  readonly count: () => number
  /** Scopes asked for, in order. */
  readonly scopes: ReadonlyArray<string>
  /** Completes once the server has received `n` token requests (at once if it already has). */
  readonly waitForRequests: (n: number) => Effect.Effect<void>
}

export const tokenServer = (
  options: {
    readonly hold?: ((n: number) => boolean) | undefined
    readonly onHeld?: ((n: number, answer: () => void) => void) | undefined
  } = {}
): Effect.Effect<TokenServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    let count = 0
    const scopes: Array<string> = []
    const waiters = new Set<() => void>()
    const server = yield* listen((req, res) => {
      if (req.method !== "POST" || !req.url.pathname.endsWith("/oauth2/v2.0/token")) {
        return sendJson(res, 404, { error: "not_found" })
      }
      count += 1
      const n = count
      scopes.push(req.form.scope ?? "")
      for (const waiter of [...waiters]) waiter()
      const answer = () =>
        sendJson(res, 200, { token_type: "Bearer", expires_in: 3599, access_token: `fleet-token-${n}` })
      if (options.hold?.(n) === true) return options.onHeld?.(n, answer)
      answer()
    })
    const waitForRequests = (n: number) =>
      Effect.async<void>((resume) => {
        const check = () => {
          if (count < n) return
          waiters.delete(check)
          resume(Effect.void)
        }
        waiters.add(check)
        check()
        return Effect.sync(() => waiters.delete(check))
      })
    return { url: server.url, count: () => count, scopes, waitForRequests }
  })

/**
 * An https server on 127.0.0.1 (random port) with a certificate issued by a test CA, started and stopped inside
 * the test's scope: `loopbackServer.ts`'s `listen` with TLS.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Handler, LoopbackServer } from "./loopbackServer.js"
import { listen } from "./loopbackServer.js"
import type { CertificateAuthority, Issued } from "./tls.js"
import { makeCertificateAuthority } from "./tls.js"

export const listenHttps = (tls: Issued, handler: Handler): Effect.Effect<LoopbackServer, never, Scope.Scope> =>
  listen(handler, tls)

/** One CA and one leaf certificate for 127.0.0.1 per test file (key generation is slow). */
let authority: Promise<{ ca: CertificateAuthority; leaf: Issued }> | undefined
export const testTls = () =>
  Effect.promise(() =>
    authority ??= makeCertificateAuthority().then(async (ca) => ({
      ca,
      leaf: await ca.issue({ commonName: "127.0.0.1", hosts: ["127.0.0.1"] })
    }))
  )

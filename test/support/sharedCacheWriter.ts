/**
 * A separate program for the multi-process test of SharedTokenCacheCredential: gets one token for one user of a
 * shared cache file from a loopback token server, so the credential writes the file back. Prints the token's length.
 *
 * usage: node --import tsx test/support/sharedCacheWriter.ts <cachePath> <authorityHost> <username> <scope>
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as IdentityNode from "../../src/node.js"
import * as SharedTokenCacheCredential from "../../src/SharedTokenCacheCredential.js"
import * as TokenCredential from "../../src/TokenCredential.js"

const [cachePath, authorityHost, username, scope] = process.argv.slice(2)

const program = TokenCredential.getToken(scope!).pipe(
  Effect.map((token) => Redacted.value(token.token).length),
  Effect.provide(
    SharedTokenCacheCredential.layer({ cachePath, authorityHost, username }).pipe(Layer.provide(IdentityNode.layer))
  ),
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
)

Effect.runPromise(program).then(
  (length) => {
    process.stdout.write(`ok ${length}\n`)
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)

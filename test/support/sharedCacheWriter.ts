/**
 * A separate program for the multi-process test of SharedTokenCacheCredential: gets one token for one user of a
 * shared cache file from a loopback token server, so the credential writes the file back. Prints the token's length.
 *
 * With `rounds` > 1, gets `rounds` tokens one after the other, each through a new credential (so each reads the file
 * again and writes back), for `<scope>` then `https://round<r>.example.test/.default`.
 *
 * usage: node --import tsx test/support/sharedCacheWriter.ts <cachePath> <authorityHost> <username> <scope> [rounds]
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as IdentityNode from "../../src/node.js"
import * as SharedTokenCacheCredential from "../../src/SharedTokenCacheCredential.js"
import * as TokenCredential from "../../src/TokenCredential.js"

const [cachePath, authorityHost, username, scope, rounds] = process.argv.slice(2)

const once = (round: number) =>
  TokenCredential.getToken(round === 0 ? scope! : `https://round${round}.example.test/.default`).pipe(
    Effect.map((token) => Redacted.value(token.token).length),
    // provided per round: a new credential, which reads the file again
    Effect.provide(
      SharedTokenCacheCredential.layer({ cachePath, authorityHost, username }).pipe(Layer.provide(IdentityNode.layer))
    )
  )

const program = Effect.forEach(Array.from({ length: Number(rounds ?? 1) }, (_, r) => r), once).pipe(
  Effect.map((lengths) => lengths.at(-1)!),
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

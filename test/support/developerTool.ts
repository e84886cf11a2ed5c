/**
 * What the tests of the developer-tool credentials (`az`, `azd`, PowerShell) share: the credential over a mock
 * `CommandExecutor`, the reason of an unavailable exit (checked for leaked secrets), and, for real child processes,
 * stub executables, the call log they write, a `getToken` run and whether a process is still alive.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { assert } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import type * as AccessToken from "../../src/AccessToken.js"
import type { CredentialUnavailableError, IdentityError } from "../../src/IdentityError.js"
import * as TokenCredential from "../../src/TokenCredential.js"
import { assertNoSecret, failureOf, setNow, withEnv } from "./helpers.js"
import type { RecordedCommand, Reply } from "./mockCommand.js"
import { mockExecutor } from "./mockCommand.js"

/**
 * The harness of a tool credential's unit tests: `harness(handler, f, options, env)` builds `layer(options)` over a
 * mock executor answering with `handler`, sets the clock to `T0`, reads configuration from `env` only, and runs `f`
 * with the credential and the commands it ran.
 */
export const mockToolHarness = <Options>(
  layer: (options?: Options) => Layer.Layer<TokenCredential.TokenCredential, never, CommandExecutor.CommandExecutor>
) =>
<A, E>(
  handler: (command: RecordedCommand, index: number) => Reply,
  f: (credential: TokenCredential.Service, commands: Array<RecordedCommand>) => Effect.Effect<A, E>,
  options?: Options,
  env: Record<string, string> = {}
): Effect.Effect<A, E> => {
  const mock = mockExecutor(handler)
  return Effect.gen(function*() {
    yield* setNow
    const credential = yield* TokenCredential.TokenCredential
    return yield* f(credential, mock.commands)
  }).pipe(
    Effect.provide(layer(options).pipe(Layer.provide(mock.layer))),
    withEnv(env)
  )
}

/**
 * The `CredentialUnavailableError` an exit failed with. Fails the test on a success, a defect or another error, and
 * when one of `secrets` shows in the error's message, `String` or JSON form.
 */
export const unavailableErrorOf =
  (...secrets: Array<string>) => (exit: Exit.Exit<unknown, IdentityError>): CredentialUnavailableError => {
    const error = failureOf(exit)
    assert.strictEqual(error._tag, "CredentialUnavailableError")
    assertNoSecret(error, ...secrets)
    return error as CredentialUnavailableError
  }

/** The reason of the `CredentialUnavailableError` an exit failed with, checked as `unavailableErrorOf` does. */
export const unavailableReasonOf = (...secrets: Array<string>) => {
  const errorOf = unavailableErrorOf(...secrets)
  return (exit: Exit.Exit<unknown, IdentityError>): string => errorOf(exit).reason
}

// -----------------------------------------------------------------------------
// real child processes
// -----------------------------------------------------------------------------

/** `getToken` for `scope` (in `tenantId` when given) with the credential of `layer`, configuration empty. */
export const getTokenExit = (
  layer: Layer.Layer<TokenCredential.TokenCredential>,
  scope: string,
  tenantId?: string
): Effect.Effect<Exit.Exit<AccessToken.AccessToken, IdentityError>> =>
  Effect.exit(TokenCredential.getToken(scope, tenantId === undefined ? {} : { tenantId })).pipe(
    Effect.provide(layer),
    withEnv({})
  )

/** Asserts that the exit holds the token `token` expiring at `expiresOnMillis`. */
export const assertToken = (
  exit: Exit.Exit<AccessToken.AccessToken, unknown>,
  token: string,
  expiresOnMillis: number
): void => {
  if (Exit.isFailure(exit)) assert.fail(`expected a token, got ${Cause.pretty(exit.cause)}`)
  assert.strictEqual(Redacted.value(exit.value.token), token)
  assert.strictEqual(DateTime.toEpochMillis(exit.value.expiresOn), expiresOnMillis)
}

/** Writes an executable `/bin/sh` script `dir/name` with `body`. */
export const writeStub = (dir: string, name: string, body: string): void =>
  fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 })

/** The lines a stub wrote to `dir/call.log`. */
export const callLog = (dir: string): Array<string> =>
  fs.readFileSync(path.join(dir, "call.log"), "utf8").trim().split("\n")

/** Asserts that none of the processes whose ids stubs wrote into `dir` (one file each) still runs. */
export const assertExited = (dir: string, pidFiles: ReadonlyArray<string>): void => {
  for (const file of pidFiles) {
    const pid = Number(fs.readFileSync(path.join(dir, file), "utf8").trim())
    assert.isFalse(isAlive(pid), `${file} ${pid} still running`)
  }
}

/** Whether `pid` runs: a zombie (dead, not yet reaped by whoever inherited it) does not count. */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return true // no /proc (macOS): kill(pid, 0) is all there is
  }
}

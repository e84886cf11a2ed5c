#!/usr/bin/env node
/**
 * The `effect-azure-identity` command: `token`, `doctor`, `emulator`. See `docs/cli.md`.
 *
 * `--version` alone is answered before anything else loads; every other command loads the command line, and each
 * command's handler loads what it uses (the credentials, the emulator) when it runs.
 *
 * @since 0.1.0
 */
import { version } from "./internal/version.js"

const args = process.argv.slice(2)

if (args.length === 1 && args[0] === "--version") {
  process.stdout.write(`${version}\n`)
} else {
  const [NodeContext, NodeRuntime, IdentityNode, Effect, Layer, { run }] = await Promise.all([
    import("@effect/platform-node/NodeContext"),
    import("@effect/platform-node/NodeRuntime"),
    import("effect-azure-identity/node"),
    import("effect/Effect"),
    import("effect/Layer"),
    import("./internal/cli/main.js")
  ])
  run(process.argv).pipe(
    Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
    Effect.provide(Layer.merge(IdentityNode.layer, NodeContext.layer)),
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
  )
}

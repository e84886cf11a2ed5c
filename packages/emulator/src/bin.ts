#!/usr/bin/env node
/**
 * The `effect-azure-identity` command: `token`, `doctor`, `emulator`. See `docs/cli.md`.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as IdentityNode from "effect-azure-identity/node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { run } from "./internal/cli/main.js"

run(process.argv).pipe(
  Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
  Effect.provide(Layer.merge(IdentityNode.layer, NodeContext.layer)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)

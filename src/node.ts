/**
 * The Node.js implementations of the services credentials use: `HttpClient` (undici), `FileSystem`, `Path` and
 * `CommandExecutor`. Provide it once at the edge of a Node program:
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { DefaultAzureCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 *
 * const CredentialLive = DefaultAzureCredential.layer().pipe(Layer.provide(IdentityNode.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Path from "@effect/platform/Path"
import * as Layer from "effect/Layer"

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  HttpClient.HttpClient | FileSystem.FileSystem | Path.Path | CommandExecutor.CommandExecutor
> = Layer.mergeAll(NodeHttpClient.layerUndici, NodeContext.layer)

/**
 * Run as a child process by test/integration/DeveloperTools.test.ts (with TZ set): gets a token through
 * AzureCliCredential with the PATH given as the first argument, and prints its expiry as ISO text.
 */
import * as NodeCommandExecutor from "@effect/platform-node/NodeCommandExecutor"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as ConfigProvider from "effect/ConfigProvider"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as AzureCliCredential from "../../src/AzureCliCredential.js"
import * as TokenCredential from "../../src/TokenCredential.js"

const layer = AzureCliCredential.layer({ environment: { PATH: process.argv[2] ?? "" } }).pipe(
  Layer.provide(NodeCommandExecutor.layer),
  Layer.provide(NodeFileSystem.layer)
)

TokenCredential.getToken("https://management.azure.com/.default").pipe(
  Effect.provide(layer),
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
  Effect.map((token) => `${DateTime.formatIso(token.expiresOn)} ${DateTime.zoneToString(DateTime.zoneMakeLocal())}`),
  Effect.runPromise
).then(
  (line) => console.log(line),
  (error) => {
    console.error(String(error))
    process.exit(1)
  }
)

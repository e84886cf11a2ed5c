/**
 * The credentials the CLI can use, by `--credential` name, each built from the environment (`Config`), and how the
 * CLI learns which credential produced a token.
 *
 * @internal
 */
import * as AzureCliCredential from "effect-azure-identity/AzureCliCredential"
import * as AzureDeveloperCliCredential from "effect-azure-identity/AzureDeveloperCliCredential"
import * as AzurePipelinesCredential from "effect-azure-identity/AzurePipelinesCredential"
import * as AzurePowerShellCredential from "effect-azure-identity/AzurePowerShellCredential"
import * as CertificateCredential from "effect-azure-identity/CertificateCredential"
import * as ClientSecretCredential from "effect-azure-identity/ClientSecretCredential"
import * as DefaultAzureCredential from "effect-azure-identity/DefaultAzureCredential"
import * as DeviceCodeCredential from "effect-azure-identity/DeviceCodeCredential"
import * as EnvironmentCredential from "effect-azure-identity/EnvironmentCredential"
import * as InteractiveBrowserCredential from "effect-azure-identity/InteractiveBrowserCredential"
import * as ManagedIdentityCredential from "effect-azure-identity/ManagedIdentityCredential"
import type * as IdentityNode from "effect-azure-identity/node"
import * as SharedTokenCacheCredential from "effect-azure-identity/SharedTokenCacheCredential"
import * as TokenCredential from "effect-azure-identity/TokenCredential"
import * as UsernamePasswordCredential from "effect-azure-identity/UsernamePasswordCredential"
import * as WorkloadIdentityCredential from "effect-azure-identity/WorkloadIdentityCredential"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Tracer from "effect/Tracer"
import type { CredentialChoice } from "./choices.js"

/** What the Node layer provides. @internal */
export type NodeServices = Layer.Layer.Success<typeof IdentityNode.layer>

/** @internal */
export type CredentialLayer = Layer.Layer<TokenCredential.TokenCredential, never, NodeServices>

/**
 * Which credential produced the last token (for chains: the link), and for managed identity which source answered
 * (`IMDS`, `App Service`, `Cloud Shell`, `Azure Arc`, …).
 *
 * @internal
 */
export class Producer extends Context.Tag("effect-azure-identity/cli/Producer")<
  Producer,
  { name: string; source: string }
>() {}

/** Wraps a credential layer so a successful `getToken` records the credential's name. @internal */
export const tracked = (
  layer: CredentialLayer
): Layer.Layer<TokenCredential.TokenCredential, never, NodeServices | Producer> =>
  Layer.effect(
    TokenCredential.TokenCredential,
    Effect.gen(function*() {
      const producer = yield* Producer
      const service = yield* TokenCredential.TokenCredential
      return TokenCredential.make(service.name, (scopes, options) =>
        Effect.tap(service.getToken(scopes, options), () =>
          Effect.sync(() => {
            if (producer.name === "") {
              producer.name = service.name
            }
          })))
    })
  ).pipe(Layer.provide(layer))

const linkSpan = /^(\w+)\.(getToken|requestToken)$/

/** The span attribute in which `ManagedIdentityCredential` names the source it uses. */
const sourceAttribute = "azure.identity.source"

/**
 * Runs `self` with a tracer that notes, from the spans the credentials open:
 * - which link of a chain succeeded: the first span named `<Credential>.getToken` or `<Credential>.requestToken`
 *   that ends successfully directly under the chain's `<chain>.getToken` span (the chain itself says only that it
 *   succeeded);
 * - which managed-identity source answered: the `azure.identity.source` attribute of the first span that carries
 *   one and ends successfully.
 *
 * @internal
 */
export const noteProducer = (chain: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.all([Producer, Effect.tracer]), ([producer, base]) =>
    Effect.withTracer(
      self,
      Tracer.make({
        span: (name, parent, context, links, startTime, kind, options) => {
          const span = base.span(name, parent, context, links, startTime, kind, options)
          const match = linkSpan.exec(name)
          const underChain = parent._tag === "Some" && parent.value._tag === "Span" &&
            parent.value.name === `${chain}.getToken`
          const link = match !== null && match[1] !== chain && underChain ? match[1]! : undefined
          const end = span.end.bind(span)
          span.end = (endTime, exit) => {
            if (Exit.isSuccess(exit)) {
              if (link !== undefined && producer.name === "") producer.name = link
              const source = span.attributes.get(sourceAttribute)
              if (typeof source === "string" && producer.source === "") producer.source = source
            }
            end(endTime, exit)
          }
          return span
        },
        context: (f, fiber) => base.context(f, fiber)
      })
    ))

/** The credential layer for a choice; every one reads its settings from the environment. @internal */
export const credentialLayer = (
  choice: CredentialChoice
): Layer.Layer<TokenCredential.TokenCredential, never, NodeServices | Producer> => {
  switch (choice) {
    case "default":
      return DefaultAzureCredential.layer()
    case "environment":
      return tracked(EnvironmentCredential.layer())
    case "client-secret":
      return tracked(ClientSecretCredential.layerConfig())
    case "certificate":
      return tracked(CertificateCredential.layerConfig())
    case "managed-identity":
      return tracked(ManagedIdentityCredential.layerConfig())
    case "workload-identity":
      return tracked(WorkloadIdentityCredential.layerConfig())
    case "shared-token-cache":
      return tracked(SharedTokenCacheCredential.layerConfig())
    case "azure-cli":
      return tracked(AzureCliCredential.layer())
    case "azure-developer-cli":
      return tracked(AzureDeveloperCliCredential.layer())
    case "azure-powershell":
      return tracked(AzurePowerShellCredential.layerConfig())
    case "azure-pipelines":
      return tracked(AzurePipelinesCredential.layerConfig())
    case "interactive-browser":
      // opens the system browser; the sign-in page redirects to a listener on localhost
      return tracked(InteractiveBrowserCredential.layer())
    case "device-code":
      // the instructions go to stderr, so `--json` output stays parseable
      return tracked(DeviceCodeCredential.layer({ prompt: (info) => Console.error(info.message) }))
    case "username-password":
      return tracked(UsernamePasswordCredential.layerConfig())
  }
}

/**
 * `DefaultAzureCredential` reduced to one member (the others excluded), so each link is tried exactly as the chain
 * tries it (same options, IMDS probe), and its `ChainedAuthenticationError` says why it could not.
 *
 * @internal
 */
export const defaultChainMember = (member: DefaultAzureCredential.Member): CredentialLayer =>
  DefaultAzureCredential.layer({ exclude: DefaultAzureCredential.members.filter((m) => m !== member) })

/**
 * `doctor`: tries each link of `DefaultAzureCredential` and says whether it can get a token, and why not. Loaded only
 * when the command runs.
 *
 * @internal
 */
import * as AzurePipelinesCredential from "effect-azure-identity/AzurePipelinesCredential"
import * as DefaultAzureCredential from "effect-azure-identity/DefaultAzureCredential"
import type { LinkError } from "effect-azure-identity/IdentityError"
import { CredentialUnavailableError } from "effect-azure-identity/IdentityError"
import * as TokenCredential from "effect-azure-identity/TokenCredential"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { NodeServices } from "./credentials.js"
import { defaultChainMember } from "./credentials.js"
import { Reported } from "./reported.js"

const verdict = (error: LinkError | undefined) =>
  error === undefined
    ? "available"
    : error._tag === "CredentialUnavailableError"
    ? "unavailable"
    : error._tag === "AuthenticationRequiredError"
    ? "needs sign-in"
    : "failed"

const watchedVariables = [
  "AZURE_AUTHORITY_HOST",
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "AZURE_CLIENT_CERTIFICATE_PATH",
  "AZURE_FEDERATED_TOKEN_FILE",
  "AZURE_USERNAME",
  "AZURE_PASSWORD",
  "AZURE_TOKEN_CREDENTIALS",
  "IDENTITY_ENDPOINT",
  "IDENTITY_HEADER",
  "MSI_ENDPOINT",
  "MSI_SECRET",
  "IMDS_ENDPOINT",
  "AZURE_POD_IDENTITY_AUTHORITY_HOST"
]

const secretVariables = new Set(["AZURE_CLIENT_SECRET", "AZURE_PASSWORD", "IDENTITY_HEADER", "MSI_SECRET"])

/** The parsed options of `doctor`. @internal */
export interface DoctorArgs {
  readonly scope: string
  readonly json: boolean
}

/** Runs `doctor`. @internal */
export const doctor = (args: DoctorArgs): Effect.Effect<void, Reported, NodeServices> =>
  Effect.gen(function*() {
    const results: Array<{ name: string; status: string; reason: string; millis: number }> = []
    for (const member of DefaultAzureCredential.members) {
      const start = yield* Effect.clockWith((c) => c.currentTimeMillis)
      const outcome = yield* Effect.either(
        TokenCredential.getToken(args.scope).pipe(Effect.provide(defaultChainMember(member)))
      )
      const end = yield* Effect.clockWith((c) => c.currentTimeMillis)
      // the chain of one member fails with a ChainedAuthenticationError holding that member's error
      const errors: ReadonlyArray<LinkError> = outcome._tag === "Right"
        ? []
        : outcome.left._tag === "ChainedAuthenticationError"
        ? outcome.left.errors
        : [outcome.left]
      const error = outcome._tag === "Left"
        ? errors[0] ?? new CredentialUnavailableError({ credential: member, reason: outcome.left.message })
        : undefined
      results.push({
        name: member,
        status: verdict(error),
        reason: outcome._tag === "Right"
          ? `got a token (expires ${DateTime.formatIso(outcome.right.expiresOn)})`
          : errors.length === 0
          ? outcome.left.message
          : errors.map((e) => e.reason).join("; "),
        millis: end - start
      })
    }
    // credentials outside the default chain: Azure Pipelines is tried when configured; the browser is never opened
    const others: Array<{ name: string; status: string; reason: string; millis: number }> = []
    {
      const start = yield* Effect.clockWith((c) => c.currentTimeMillis)
      const outcome = yield* Effect.either(
        TokenCredential.getToken(args.scope).pipe(Effect.provide(AzurePipelinesCredential.layerConfig()))
      )
      const end = yield* Effect.clockWith((c) => c.currentTimeMillis)
      others.push({
        name: AzurePipelinesCredential.name,
        status: outcome._tag === "Right"
          ? "available"
          : outcome.left._tag === "ChainedAuthenticationError"
          ? "failed"
          : verdict(outcome.left),
        reason: outcome._tag === "Right"
          ? `got a token (expires ${DateTime.formatIso(outcome.right.expiresOn)})`
          : outcome.left.message,
        millis: end - start
      })
    }
    others.push({
      name: "InteractiveBrowserCredential",
      status: "not tried",
      reason: "it would open a browser: try it with `token --credential interactive-browser`",
      millis: 0
    })
    const decisive = results.find((r) => r.status === "available" || r.status === "failed")
    const summary = decisive === undefined
      ? `${DefaultAzureCredential.name} would fail: no link could get a token. Configure one of the links above.`
      : decisive.status === "available"
      ? `${DefaultAzureCredential.name} would use ${decisive.name}.`
      : `${DefaultAzureCredential.name} would stop at ${decisive.name}, which is configured but failed: fix it or ` +
        `remove its configuration.`
    if (args.json) {
      yield* Console.log(JSON.stringify({ scope: args.scope, links: results, others, summary }, null, 2))
    } else {
      // read through Config, as the credentials read them: the same ConfigProvider decides what doctor shows
      const env: Array<string> = []
      for (const name of watchedVariables) {
        const value = Option.getOrUndefined(
          yield* Effect.orElseSucceed(Config.option(Config.string(name)), () => Option.none<string>())
        )
        env.push(
          `  ${name}: ${value === undefined || value === "" ? "-" : secretVariables.has(name) ? "(set)" : value}`
        )
      }
      const width = Math.max(...results.map((r) => r.name.length), ...others.map((r) => r.name.length))
      yield* Console.log(
        [
          `scope: ${args.scope}`,
          "environment:",
          ...env,
          `${DefaultAzureCredential.name}, link by link:`,
          ...results.map((r, i) =>
            `  ${i + 1}. ${r.name.padEnd(width)}  ${r.status.padEnd(13)} ${
              String(r.millis).padStart(5)
            } ms  ${r.reason}`
          ),
          summary,
          "outside the default chain:",
          ...others.map((r) =>
            `  -  ${r.name.padEnd(width)}  ${r.status.padEnd(13)} ${String(r.millis).padStart(5)} ms  ${r.reason}`
          )
        ].join("\n")
      )
    }
    if (decisive?.status !== "available") return yield* new Reported({ exitCode: 1 })
  })

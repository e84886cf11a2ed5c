/**
 * The choices of the CLI's options, in a module that imports nothing: the command definitions need them, and
 * loading the credentials or the emulator only to print `--help` or `--version` would slow every start.
 *
 * @internal
 */
import type * as IdentityEmulator from "../../IdentityEmulator.js"

/** `--credential` choices. @internal */
export const credentialChoices = [
  "default",
  "environment",
  "client-secret",
  "certificate",
  "managed-identity",
  "workload-identity",
  "shared-token-cache",
  "azure-cli",
  "azure-developer-cli",
  "azure-powershell",
  "azure-pipelines",
  "interactive-browser",
  "device-code",
  "username-password"
] as const

/** @internal */
export type CredentialChoice = typeof credentialChoices[number]

/**
 * `emulator --scenario` choices: the emulator's scenarios, and `username-password` (the tenant, the public client
 * and the test user's `AZURE_USERNAME` / `AZURE_PASSWORD`), which the CLI adds.
 *
 * @internal
 */
export const scenarioChoices = [
  "all",
  "environment",
  "username-password",
  "workload-identity",
  "imds",
  "app-service-2019",
  "app-service-2017",
  "cloud-shell",
  "azure-arc",
  "azure-pipelines"
] as const satisfies ReadonlyArray<IdentityEmulator.Scenario | "username-password">

/** @internal */
export type ScenarioChoice = typeof scenarioChoices[number]

// every scenario of the emulator is a choice: fails to compile when the emulator gains one the CLI does not offer
const _allScenarios: Exclude<IdentityEmulator.Scenario, ScenarioChoice> extends never ? true : never = true
void _allScenarios

/** The default scope of `token` and `doctor`. @internal */
export const defaultScope = "https://management.azure.com/.default"

/**
 * Which managed-identity host this is, from the environment (through `Config`), in this order:
 *
 * 1. token exchange (AKS workload identity): `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_TENANT_ID` + a client id;
 * 2. Service Fabric: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT`;
 * 3. App Service / Functions / Container Apps: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`;
 * 4. App Service 2017 API / Azure ML: `MSI_ENDPOINT` + `MSI_SECRET`;
 * 5. Cloud Shell: `MSI_ENDPOINT`;
 * 6. Azure Arc: `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or the HIMDS agent on disk;
 * 7. IMDS (the host from the option, else `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else 169.254.169.254).
 *
 * `IDENTITY_ENDPOINT` alone is an incomplete environment, reported as such rather than silently using IMDS.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as AzureArc from "./azureArc.js"
import * as Imds from "./imds.js"

/** @internal */
export type Detected =
  | {
    readonly _tag: "TokenExchange"
    readonly tenantId: string
    readonly clientId: Option.Option<string>
    readonly tokenFilePath: string
  }
  | {
    readonly _tag: "ServiceFabric"
    readonly endpoint: string
    readonly header: Redacted.Redacted<string>
    readonly thumbprint: string
  }
  | { readonly _tag: "AppService2019"; readonly endpoint: string; readonly header: Redacted.Redacted<string> }
  | {
    readonly _tag: "AppService2017"
    readonly endpoint: string
    readonly secret: Redacted.Redacted<string>
    readonly defaultClientId: Option.Option<string>
  }
  | { readonly _tag: "CloudShell"; readonly endpoint: string }
  | {
    readonly _tag: "AzureArc"
    readonly endpoint: string
    readonly endpointSource: string
    readonly keyDirectory: Option.Option<string>
  }
  | { readonly _tag: "Imds"; readonly host: string; readonly hostSource: string; readonly podIdentity: boolean }
  | { readonly _tag: "Incomplete"; readonly reason: string }

/** @internal */
export interface DetectOptions {
  /** The `clientId` option (the token exchange falls back to `AZURE_CLIENT_ID`). */
  readonly clientId: string | undefined
  readonly imdsEndpoint: string | undefined
  readonly himdsPaths: ReadonlyArray<string> | undefined
  readonly arcKeyDirectory: string | undefined
  /** `process.platform` by default. */
  readonly platform: string | undefined
}

/** A variable, trimmed; unset, empty and unreadable are all "none". @internal */
export const optionalString = (name: string): Effect.Effect<Option.Option<string>> =>
  Config.option(Config.string(name)).pipe(
    Effect.map((o) => Option.filter(Option.map(o, (s) => s.trim()), (s) => s !== "")),
    Effect.orElseSucceed(() => Option.none<string>())
  )

/** A secret variable, as `Redacted`; unset, empty and unreadable are all "none". @internal */
export const optionalSecret = (name: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>> =>
  Config.option(Config.redacted(name)).pipe(
    Effect.map((o) =>
      Option.flatMap(o, (r) => {
        const value = Redacted.value(r).trim()
        return value === "" ? Option.none() : Option.some(Redacted.make(value))
      })
    ),
    Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
  )

/** The current platform, without importing node modules. @internal */
export const currentPlatform = (): string | undefined =>
  (globalThis as { readonly process?: { readonly platform?: unknown } }).process?.platform as string | undefined

/** Where the Arc agent lives on this platform, unless the options say otherwise. @internal */
export const arcPaths = (options: DetectOptions): Effect.Effect<{
  readonly himdsPaths: ReadonlyArray<string>
  readonly keyDirectory: Option.Option<string>
}> =>
  Effect.gen(function*() {
    const platform = options.platform ?? currentPlatform()
    let himdsPaths: ReadonlyArray<string> = []
    let keyDirectory: Option.Option<string> = Option.none()
    if (platform === "linux") {
      himdsPaths = AzureArc.linuxHimdsPaths
      keyDirectory = Option.some(AzureArc.linuxKeyDirectory)
    } else if (platform === "win32") {
      const programFiles = Option.getOrElse(yield* optionalString("ProgramFiles"), () => "C:\\Program Files")
      const programData = Option.getOrElse(yield* optionalString("ProgramData"), () => "C:\\ProgramData")
      himdsPaths = [`${programFiles}\\AzureConnectedMachineAgent\\himds.exe`]
      keyDirectory = Option.some(`${programData}\\AzureConnectedMachineAgent\\Tokens`)
    }
    return {
      himdsPaths: options.himdsPaths ?? himdsPaths,
      keyDirectory: options.arcKeyDirectory === undefined ? keyDirectory : Option.some(options.arcKeyDirectory)
    }
  })

/** @internal */
export const detect = (options: DetectOptions, fs: FileSystem.FileSystem): Effect.Effect<Detected> =>
  Effect.gen(function*() {
    const federatedTokenFile = yield* optionalString("AZURE_FEDERATED_TOKEN_FILE")
    const tenantId = yield* optionalString("AZURE_TENANT_ID")
    const clientId = options.clientId !== undefined && options.clientId.trim() !== ""
      ? Option.some(options.clientId.trim())
      : yield* optionalString("AZURE_CLIENT_ID")
    if (Option.isSome(federatedTokenFile) && Option.isSome(tenantId) && Option.isSome(clientId)) {
      return { _tag: "TokenExchange", tenantId: tenantId.value, clientId, tokenFilePath: federatedTokenFile.value }
    }

    const identityEndpoint = yield* optionalString("IDENTITY_ENDPOINT")
    const identityHeader = yield* optionalSecret("IDENTITY_HEADER")
    if (Option.isSome(identityEndpoint) && Option.isSome(identityHeader)) {
      const thumbprint = yield* optionalString("IDENTITY_SERVER_THUMBPRINT")
      return Option.isSome(thumbprint)
        ? {
          _tag: "ServiceFabric",
          endpoint: identityEndpoint.value,
          header: identityHeader.value,
          thumbprint: thumbprint.value
        }
        : { _tag: "AppService2019", endpoint: identityEndpoint.value, header: identityHeader.value }
    }

    const msiEndpoint = yield* optionalString("MSI_ENDPOINT")
    if (Option.isSome(msiEndpoint)) {
      const msiSecret = yield* optionalSecret("MSI_SECRET")
      return Option.isSome(msiSecret)
        ? {
          _tag: "AppService2017",
          endpoint: msiEndpoint.value,
          secret: msiSecret.value,
          defaultClientId: yield* optionalString("DEFAULT_IDENTITY_CLIENT_ID")
        }
        : { _tag: "CloudShell", endpoint: msiEndpoint.value }
    }

    const arc = yield* arcPaths(options)
    if (Option.isSome(identityEndpoint)) {
      const imdsEndpoint = yield* optionalString("IMDS_ENDPOINT")
      if (Option.isSome(imdsEndpoint)) {
        return {
          _tag: "AzureArc",
          endpoint: identityEndpoint.value,
          endpointSource: "IDENTITY_ENDPOINT",
          keyDirectory: arc.keyDirectory
        }
      }
      return {
        _tag: "Incomplete",
        reason: "IDENTITY_ENDPOINT is set, but neither IDENTITY_HEADER (App Service, Functions, Container Apps, " +
          "Service Fabric) nor IMDS_ENDPOINT (Azure Arc) is: the managed identity environment is incomplete"
      }
    }

    for (const path of arc.himdsPaths) {
      const present = yield* fs.access(path, { readable: true }).pipe(
        Effect.as(true),
        Effect.orElseSucceed(() => false)
      )
      if (present) {
        return {
          _tag: "AzureArc",
          endpoint: AzureArc.defaultEndpoint,
          endpointSource: `the default endpoint (the agent was found at ${path})`,
          keyDirectory: arc.keyDirectory
        }
      }
    }

    const podIdentity = yield* optionalString("AZURE_POD_IDENTITY_AUTHORITY_HOST")
    if (options.imdsEndpoint !== undefined && options.imdsEndpoint.trim() !== "") {
      return {
        _tag: "Imds",
        host: Imds.normalizeHost(options.imdsEndpoint),
        hostSource: "the imdsEndpoint option",
        podIdentity: false
      }
    }
    if (Option.isSome(podIdentity)) {
      return {
        _tag: "Imds",
        host: Imds.normalizeHost(podIdentity.value),
        hostSource: "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        podIdentity: true
      }
    }
    return { _tag: "Imds", host: Imds.defaultHost, hostSource: "the default address", podIdentity: false }
  })

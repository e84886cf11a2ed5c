/**
 * Regional token endpoints (ESTS-R) for the client credentials grant.
 *
 * The setting is the `regionalAuthority` option, else `AZURE_REGIONAL_AUTHORITY_NAME`, else `MSAL_FORCE_REGION`
 * (msal-node's variable, which @azure/identity therefore honours too; `DisableMsalForceRegion` in either of the first
 * two turns it off): a region name (`westus`, `usgovvirginia`, …) or `tryAutoDetect` (also accepted:
 * `AutoDiscoverRegion`, the name @azure/identity documents, which is broken there). Automatic detection reads `REGION_NAME`, else asks IMDS
 * `GET {imds}/metadata/instance/compute/location?api-version=2021-02-01&format=text` with `Metadata: true` (IMDS from
 * the `imdsEndpoint` option, else `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else `http://169.254.169.254`; 2 s timeout,
 * once per credential); when it finds nothing usable, requests go to the global endpoint.
 *
 * Host rule (msal-common's): an authority host of the public cloud (`login.microsoftonline.com`,
 * `login.windows.net`, `login.microsoft.com`, `sts.windows.net`) becomes `{region}.login.microsoft.com`; any other
 * host `{region}.{host}` (scheme, port and path kept). Loopback and IP-literal hosts (tests, the emulator) and the
 * `adfs` tenant are never made regional.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as SynchronizedRef from "effect/SynchronizedRef"
import * as AuthorityHost from "../AuthorityHost.js"

/** @internal */
export const variable = "AZURE_REGIONAL_AUTHORITY_NAME"

/**
 * MSAL's own variable (msal-node, MSAL Go): the region when neither the option nor `AZURE_REGIONAL_AUTHORITY_NAME`
 * gives one. @internal
 */
export const msalVariable = "MSAL_FORCE_REGION"

/** The value (of the option or `AZURE_REGIONAL_AUTHORITY_NAME`) that turns `MSAL_FORCE_REGION` off, as in MSAL. */
const disableMsalForceRegion = "disablemsalforceregion"

/** The values that ask for automatic detection, lower-cased. @internal */
export const autoDetectValues: ReadonlyArray<string> = ["tryautodetect", "autodiscoverregion"]

/** @internal */
export const defaultImdsEndpoint = "http://169.254.169.254"

/** @internal */
export const imdsLocationPath = "/metadata/instance/compute/location?api-version=2021-02-01&format=text"

/** @internal */
export const defaultDetectionTimeout: Duration.Duration = Duration.seconds(2)

/** @internal */
export interface Options {
  /** A region name, or `tryAutoDetect`. Defaults to `AZURE_REGIONAL_AUTHORITY_NAME`, else `MSAL_FORCE_REGION`. */
  readonly regionalAuthority?: string | undefined
  /** How the region is detected with `tryAutoDetect`. */
  readonly regionDetection?: {
    /** The IMDS origin. Defaults to `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else `http://169.254.169.254`. */
    readonly imdsEndpoint?: string | undefined
    /** How long IMDS may take. Default 2 seconds. */
    readonly timeout?: Duration.DurationInput | undefined
  } | undefined
}

/** @internal */
export type Setting =
  | { readonly _tag: "Global" }
  | { readonly _tag: "Region"; readonly region: string }
  | { readonly _tag: "AutoDetect" }

const labelPattern = /^[a-z][a-z0-9-]{0,62}$/

/**
 * A region name as a DNS label: spaces removed, lower-cased, `[a-z][a-z0-9-]*`, at most 63 characters, no trailing
 * `-`.
 *
 * @internal
 */
export const normalizeRegion = (name: string): Either.Either<string, string> => {
  const region = name.replace(/\s+/g, "").toLowerCase()
  return labelPattern.test(region) && !region.endsWith("-")
    ? Either.right(region)
    : Either.left(
      `the regional authority ${JSON.stringify(name.slice(0, 80))} is not a region name: use a name such as ` +
        `"westus" or "westeurope", or "tryAutoDetect" to read it from IMDS`
    )
}

/** Interprets the option or variable value. @internal */
export const parseSetting = (value: string | undefined): Either.Either<Setting, string> => {
  const v = value?.trim() ?? ""
  if (v === "" || v.toLowerCase() === disableMsalForceRegion) return Either.right({ _tag: "Global" })
  if (autoDetectValues.includes(v.toLowerCase())) return Either.right({ _tag: "AutoDetect" })
  return Either.map(normalizeRegion(v), (region): Setting => ({ _tag: "Region", region }))
}

const publicHosts = new Set(AuthorityHost.aliases[0])

const isIpLiteral = (hostname: string): boolean =>
  /^\d{1,3}(?:\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith("[")

/**
 * The regional authority host for a (normalised) authority host and a region.
 *
 * @internal
 */
export const regionalHost = (authorityHost: string, region: string): string => {
  const url = new URL(authorityHost)
  const hostname = url.hostname.toLowerCase()
  if (AuthorityHost.isLoopbackHost(hostname) || isIpLiteral(hostname)) return authorityHost
  const path = url.pathname.replace(/\/+$/, "")
  if (publicHosts.has(hostname)) return `https://${region}.login.microsoft.com${path}`
  return `${url.protocol}//${region}.${url.host}${path}`
}

const optionalString = (key: string): Effect.Effect<string | undefined> =>
  Config.option(Config.string(key)).pipe(
    Effect.map((o) => Option.getOrUndefined(Option.filter(o, (s) => s.trim() !== ""))),
    Effect.orElseSucceed(() => undefined)
  )

/** The first of `names` that is set (and not blank), with its value; else the last name, and `undefined`. */
const firstSet = (names: readonly [string, ...Array<string>]): Effect.Effect<readonly [string, string | undefined]> =>
  Effect.gen(function*() {
    for (const name of names) {
      const value = yield* optionalString(name)
      if (value !== undefined) return [name, value] as const
    }
    return [names[names.length - 1]!, undefined] as const
  })

/**
 * The region from `REGION_NAME`, else from IMDS; none when neither gives a usable name (never fails).
 *
 * @internal
 */
export const detectRegion = (
  client: HttpClient.HttpClient,
  options: Options["regionDetection"]
): Effect.Effect<Option.Option<string>> =>
  Effect.gen(function*() {
    const fromEnv = yield* optionalString("REGION_NAME")
    if (fromEnv !== undefined) {
      const region = normalizeRegion(fromEnv)
      if (Either.isRight(region)) return Option.some(region.right)
    }
    const origin = (options?.imdsEndpoint ?? (yield* optionalString("AZURE_POD_IDENTITY_AUTHORITY_HOST")) ??
      defaultImdsEndpoint).trim().replace(/\/+$/, "")
    const timeout = Duration.decode(options?.timeout ?? defaultDetectionTimeout)
    const answer = yield* client.execute(
      HttpClientRequest.get(`${origin}${imdsLocationPath}`).pipe(HttpClientRequest.setHeader("Metadata", "true"))
    ).pipe(
      Effect.mapError((error) => `IMDS could not be reached (${error._tag})`),
      Effect.flatMap((response) =>
        response.status === 200
          ? Effect.mapError(response.text, () => "the IMDS answer could not be read")
          : Effect.fail(`IMDS answered HTTP ${response.status}`)
      ),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => `IMDS did not answer within ${Duration.format(timeout)}`
      }),
      Effect.either
    )
    if (Either.isLeft(answer)) {
      yield* Effect.logInfo(`regional authority: no region detected (${answer.left}); using the global endpoint`)
      return Option.none()
    }
    const region = normalizeRegion(answer.right.trim())
    if (Either.isLeft(region)) {
      yield* Effect.logInfo("regional authority: IMDS answered no usable region; using the global endpoint")
      return Option.none()
    }
    return Option.some(region.right)
  })

/** What a credential resolved about regions: the host for a token request to a tenant. @internal */
export interface Regional {
  readonly host: (tenantId: string) => Effect.Effect<string>
  /** The host at once, when it is known without detecting anything (no region, or a region given by name). */
  readonly hostNow: (tenantId: string) => string | undefined
}

/**
 * Reads the setting (option, else `AZURE_REGIONAL_AUTHORITY_NAME`, else `MSAL_FORCE_REGION`) and binds it to an
 * authority host. An invalid
 * region name is a description of the problem. Detection runs once, on the first token request.
 *
 * @internal
 */
export const make = (
  client: HttpClient.HttpClient,
  authorityHost: string,
  options: Options
): Effect.Effect<Either.Either<Regional, string>> =>
  Effect.gen(function*() {
    // the option, else AZURE_REGIONAL_AUTHORITY_NAME, else MSAL_FORCE_REGION (unless one of the first two says
    // `DisableMsalForceRegion`, MSAL's way of turning it off)
    const [source, value] = options.regionalAuthority !== undefined
      ? ["regionalAuthority option", options.regionalAuthority] as const
      : yield* firstSet([variable, msalVariable])
    const setting = parseSetting(value)
    if (Either.isLeft(setting)) return Either.left(`${source}: ${setting.left}`)
    const forTenant = (region: Option.Option<string>) => (tenantId: string) =>
      Option.isNone(region) || tenantId.toLowerCase() === "adfs"
        ? authorityHost
        : regionalHost(authorityHost, region.value)
    switch (setting.right._tag) {
      case "Global":
        return Either.right({ host: () => Effect.succeed(authorityHost), hostNow: () => authorityHost })
      case "Region": {
        const host = forTenant(Option.some(setting.right.region))
        return Either.right({ host: (tenantId: string) => Effect.succeed(host(tenantId)), hostNow: host })
      }
      case "AutoDetect": {
        // Detected once. The lock is held for at most the detection timeout; a caller interrupted while holding it
        // leaves nothing behind, and the next caller detects again (`Effect.cached` would hand that interruption to
        // every later caller).
        const memo = yield* SynchronizedRef.make(Option.none<Option.Option<string>>())
        const detect = detectRegion(client.pipe(HttpClient.withTracerPropagation(false)), options.regionDetection)
        const detected = SynchronizedRef.modifyEffect(memo, (known) =>
          Option.isSome(known)
            ? Effect.succeed([known.value, known] as const)
            : Effect.map(detect, (region) => [region, Option.some(region)] as const))
        return Either.right({
          host: (tenantId: string) => Effect.map(detected, (r) => forTenant(r)(tenantId)),
          hostNow: () => undefined
        })
      }
    }
  })

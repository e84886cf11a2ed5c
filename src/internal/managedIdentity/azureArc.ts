/**
 * Azure Arc-enabled servers: `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or the HIMDS agent installed on disk (then the
 * endpoint is `http://127.0.0.1:40342/metadata/identity/oauth2/token`). API 2020-06-01:
 *
 * 1. `GET $IDENTITY_ENDPOINT?api-version=2020-06-01&resource=…` with `Metadata: true`;
 * 2. the agent answers 401 with `WWW-Authenticate: Basic realm=<absolute path of a key file>`;
 * 3. the path is checked: in the agent's token directory exactly, named `*.key`, at most 4096 bytes — read through
 *    `FileSystem` (it takes membership of the `himds` group, or administrator rights);
 * 4. the same GET again with `Authorization: Basic <file contents>`.
 *
 * Only the system-assigned identity exists on Arc servers.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { ClientAuthenticationError } from "../../IdentityError.js"
import * as BoundedFile from "../boundedFile.js"
import { sendWithRetry } from "../http.js"
import type { Source, SourceContext } from "./common.js"
import { commonHeaders, interpret, userAssignedUnsupported, withRedactedHeaders } from "./common.js"

/** @internal */
export const label = "Azure Arc"

/** @internal */
export const apiVersion = "2020-06-01"

/** @internal */
export const defaultEndpoint = "http://127.0.0.1:40342/metadata/identity/oauth2/token"

/** @internal */
export const maxKeyBytes = BoundedFile.limits.arcKey

/** The agent's token directory on Linux. @internal */
export const linuxKeyDirectory = "/var/opt/azcmagent/tokens"

/** Where the HIMDS agent binary is on Linux (msal-node's path; MSAL for Python checks `/var/opt/…`). @internal */
export const linuxHimdsPaths: ReadonlyArray<string> = ["/opt/azcmagent/bin/himds"]

/** @internal */
export interface Environment {
  readonly endpoint: string
  /** Where the endpoint came from, for messages. */
  readonly endpointSource: string
  /** The directory key files must be in; none on platforms the agent does not run on. */
  readonly keyDirectory: Option.Option<string>
}

const lastSeparator = (path: string) => Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"))

const trimSeparators = (path: string) => path.replace(/[/\\]+$/, "")

/**
 * Checks the challenge's key file path: exactly in `keyDirectory`, named `*.key`. Windows-style directories compare
 * case-insensitively. Returns the reason it is refused.
 *
 * @internal
 */
export const checkKeyPath = (path: string, keyDirectory: string): Either.Either<string, string> => {
  const at = lastSeparator(path)
  const directory = at < 0 ? "" : trimSeparators(path.slice(0, at))
  const name = path.slice(at + 1)
  const windows = keyDirectory.includes("\\")
  const expected = trimSeparators(keyDirectory)
  const same = windows ? directory.toLowerCase() === expected.toLowerCase() : directory === expected
  if (!same) {
    return Either.left(
      `the key file ${JSON.stringify(path)} is not in the Azure Arc agent's token directory ${JSON.stringify(expected)}`
    )
  }
  if (!name.toLowerCase().endsWith(".key") || name.length <= 4) {
    return Either.left(`the key file ${JSON.stringify(path)} is not named *.key`)
  }
  return Either.right(path)
}

/** The path in `WWW-Authenticate: Basic realm=<path>`. @internal */
export const challengePath = (header: string | undefined): Option.Option<string> => {
  if (header === undefined) return Option.none()
  const match = /^\s*Basic\s+realm\s*=\s*(?:"([^"]+)"|(\S.*?))\s*$/i.exec(header)
  const path = match?.[1] ?? match?.[2]
  return path === undefined || path === "" ? Option.none() : Option.some(path)
}

/** @internal */
export const make = (ctx: SourceContext, env: Environment, fs: FileSystem.FileSystem): Source => {
  if (ctx.identity._tag !== "SystemAssigned") {
    return userAssignedUnsupported(ctx, label, "Azure Arc-enabled servers have a system-assigned identity only")
  }
  const refuse = (reason: string, status?: number) =>
    new ClientAuthenticationError({
      credential: ctx.credential,
      ...(status !== undefined ? { status } : {}),
      reason: `Azure Arc: ${reason}`
    })

  const request = (resource: string, key: Option.Option<Redacted.Redacted<string>>) =>
    Effect.map(commonHeaders, (headers) =>
      HttpClientRequest.get(env.endpoint).pipe(
        HttpClientRequest.appendUrlParams({ "api-version": apiVersion, resource }),
        HttpClientRequest.setHeaders({
          ...headers,
          Metadata: "true",
          ...(Option.isSome(key) ? { Authorization: `Basic ${Redacted.value(key.value)}` } : {})
        })
      ))

  const how = (secrets: ReadonlyArray<Redacted.Redacted<string>>) => ({
    credential: ctx.credential,
    label,
    secrets,
    noResponseHint: `check that the Azure Arc agent (himds) is running and that ${env.endpointSource} names its ` +
      `endpoint`
  })

  const readKey = (path: string): Effect.Effect<Redacted.Redacted<string>, ClientAuthenticationError> =>
    Effect.gen(function*() {
      if (Option.isNone(env.keyDirectory)) {
        return yield* Effect.fail(refuse("key files are supported on Linux and Windows only"))
      }
      const checked = checkKeyPath(path, env.keyDirectory.value)
      if (Either.isLeft(checked)) {
        return yield* Effect.fail(refuse(`${checked.left}; refusing to read it`))
      }
      const bytes = yield* Effect.mapError(BoundedFile.readBytes(fs, path, maxKeyBytes), (error) =>
        refuse(
          error.problem === "NotAFile"
            ? `the key file ${JSON.stringify(path)} is not a file (${error.detail}); refusing to read it`
            : error.problem === "TooLarge"
            ? `the key file ${JSON.stringify(path)} is larger than ${maxKeyBytes} bytes; refusing to read it`
            : `could not read the key file ${JSON.stringify(path)} (${
              error.problem === "Unreadable" ? error.detail : error.problem
            }): run as a member of the himds group (Linux) or as an administrator (Windows)`
        ))
      const key = new TextDecoder().decode(bytes).trim()
      if (key === "") return yield* Effect.fail(refuse(`the key file ${JSON.stringify(path)} is empty`))
      return Redacted.make(key)
    })

  return {
    label,
    getToken: (resource) =>
      Effect.gen(function*() {
        const first = yield* sendWithRetry(ctx.client, request(resource, Option.none()), ctx.retryPolicy)
        if (Either.isLeft(first.result) || first.result.right.status !== 401) {
          return yield* interpret(how([]), first)
        }
        const path = challengePath(first.result.right.headers["www-authenticate"])
        if (Option.isNone(path)) {
          return yield* Effect.fail(
            refuse(
              `the agent at ${first.url} answered 401 without a "WWW-Authenticate: Basic realm=<key file>" ` +
                `challenge; check that ${env.endpointSource} names the Azure Arc agent`,
              401
            )
          )
        }
        const key = yield* readKey(path.value)
        const second = yield* sendWithRetry(ctx.client, request(resource, Option.some(key)), ctx.retryPolicy)
        return yield* interpret(how([key]), second)
      }).pipe(withRedactedHeaders)
  }
}

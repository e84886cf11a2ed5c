import * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as TestClock from "effect/TestClock"
import { ManagedIdentityCredential, PinnedHttpClient, TokenCredential } from "../src/index.js"
import {
  assertNoSecret,
  failureOf,
  layerFileReads,
  setNow,
  settle,
  T0,
  tokenValue,
  withCredentialOver,
  withEnv
} from "./support/helpers.js"
import type { Answer, Recorded } from "./support/mockHttp.js"
import { json, mockHttp, reset, text } from "./support/mockHttp.js"
import { recordingTracer } from "./support/tracing.js"

const SCOPE = "https://vault.azure.net/.default"
const RESOURCE = "https://vault.azure.net"
const T0s = T0 / 1000
const HOUR = 3600_000
const IMDS_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
const IDENTITY_HEADER = "identity-header-secret-9f8e"
const MSI_SECRET = "msi-secret-value-7d6c"
const ARC_KEY = "arc-key-file-contents-5b4a"
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

interface Setup {
  readonly env?: Record<string, string>
  readonly options?: ManagedIdentityCredential.Options
  readonly fs?: Partial<FileSystem.FileSystem>
  /** A PinnedHttpClient built over the mock client; "none" leaves it out. */
  readonly pinned?: "none" | ((client: HttpClient.HttpClient) => PinnedHttpClient.Service)
}

const imdsToken = (token = "imds-token", lifetimeSeconds = 86_400, extra: object = {}) => ({
  access_token: token,
  refresh_token: "",
  expires_in: String(lifetimeSeconds),
  expires_on: String(T0s + lifetimeSeconds),
  ext_expires_in: String(lifetimeSeconds),
  not_before: String(T0s),
  resource: RESOURCE,
  token_type: "Bearer",
  ...extra
})

const defaultPinned = (client: HttpClient.HttpClient): PinnedHttpClient.Service => ({
  make: () => Effect.succeed(client)
})

/** Runs `f` with the credential over a mock HTTP client (and a no-op file system unless given). */
const withCredential = <A, E>(
  setup: Setup,
  handler: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>,
  f: (credential: TokenCredential.Service, requests: Array<Recorded>) => Effect.Effect<A, E>
) =>
  withCredentialOver(ManagedIdentityCredential.layer(setup.options), handler, f, {
    env: setup.env,
    deps: (http) =>
      Layer.mergeAll(
        http.layer,
        layerFileReads(setup.fs ?? {}),
        setup.pinned === "none"
          ? Layer.empty
          : Layer.succeed(PinnedHttpClient.PinnedHttpClient, (setup.pinned ?? defaultPinned)(http.client))
      )
  }).pipe(Effect.withRandom(Random.make("managed-identity-tests")))

/** Runs `effect` while moving the test clock in `stepMillis` steps; returns its exit. */
const driveClock = <A, E>(effect: Effect.Effect<A, E>, stepMillis = 250, maxSteps = 4000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    for (let i = 0; i < maxSteps; i++) {
      yield* settle
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return done.value
      yield* TestClock.adjust(Duration.millis(stepMillis))
    }
    yield* Fiber.interrupt(fiber)
    throw new Error("the effect did not finish")
  })

const query = (r: Recorded) => Object.fromEntries(r.url.searchParams)

describe("ManagedIdentityCredential", () => {
  describe("IMDS (the default)", () => {
    it.effect("sends the exact request and reads the answer", () =>
      withCredential({}, () => json(200, imdsToken("imds-1")), (credential, requests) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(tokenValue(token), "imds-1")
          assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + 24 * HOUR)
          // a 24 h token is refreshed at half its life
          assert.strictEqual(
            Option.map(token.refreshOn, DateTime.toEpochMillis).pipe(Option.getOrThrow),
            T0 + 12 * HOUR
          )
          assert.strictEqual(requests.length, 1)
          const r = requests[0]!
          assert.strictEqual(r.method, "GET")
          assert.strictEqual(`${r.url.origin}${r.url.pathname}`, IMDS_URL)
          assert.deepStrictEqual(query(r), { "api-version": "2018-02-01", resource: RESOURCE })
          assert.strictEqual(r.headers["metadata"], "true")
          assert.strictEqual(r.headers["accept"], "application/json")
          assert.match(r.headers["x-ms-client-request-id"]!, UUID)
          assert.include(r.headers["user-agent"]!, "effect-azure-identity/")
          assert.isUndefined(r.headers["traceparent"])
          assert.strictEqual(r.body, "")
        })))

    for (
      const [option, param] of [
        ["clientId", "client_id"],
        ["objectId", "object_id"],
        ["resourceId", "msi_res_id"]
      ] as const
    ) {
      it.effect(`a user-assigned ${option} is sent as ${param}`, () =>
        withCredential(
          { options: { [option]: "uami-123" } },
          () => json(200, imdsToken()),
          (credential, requests) =>
            Effect.gen(function*() {
              yield* credential.getToken(SCOPE)
              assert.deepStrictEqual(query(requests[0]!), {
                "api-version": "2018-02-01",
                resource: RESOURCE,
                [param]: "uami-123"
              })
            })
        ))
    }

    it.effect("the host comes from the imdsEndpoint option, then AZURE_POD_IDENTITY_AUTHORITY_HOST", () =>
      Effect.gen(function*() {
        const viaOption = yield* withCredential(
          {
            options: { imdsEndpoint: "http://127.0.0.1:8099/" },
            env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.2:1" }
          },
          () => json(200, imdsToken()),
          (credential, requests) => Effect.map(credential.getToken(SCOPE), () => requests[0]!.url)
        )
        assert.strictEqual(
          `${viaOption.origin}${viaOption.pathname}`,
          "http://127.0.0.1:8099/metadata/identity/oauth2/token"
        )
        const viaEnv = yield* withCredential(
          { env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "127.0.0.3:2222" } },
          () => json(200, imdsToken()),
          (credential, requests) => Effect.map(credential.getToken(SCOPE), () => requests[0]!.url)
        )
        assert.strictEqual(`${viaEnv.origin}${viaEnv.pathname}`, "http://127.0.0.3:2222/metadata/identity/oauth2/token")
      }))

    it.effect("caches per resource; a claims challenge bypasses the cache", () =>
      withCredential(
        {},
        (_, i) => json(200, imdsToken(`tok-${i + 1}`)),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            yield* TestClock.adjust("1 hour")
            assert.strictEqual(tokenValue(yield* credential.getToken([SCOPE])), "tok-1")
            assert.strictEqual(requests.length, 1)
            // the resource is the key: with or without /.default is the same resource
            assert.strictEqual(tokenValue(yield* credential.getToken(RESOURCE)), "tok-1")
            yield* credential.getToken("https://management.azure.com/.default")
            assert.strictEqual(requests.length, 2)
            assert.strictEqual(query(requests[1]!).resource, "https://management.azure.com")
            const fresh = yield* credential.getToken(SCOPE, { claims: "{\"access_token\":{}}" })
            assert.strictEqual(tokenValue(fresh), "tok-3")
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "tok-3")
            // getToken's tenantId is ignored: the identity's tenant is fixed
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE, { tenantId: "other" })), "tok-3")
            assert.strictEqual(requests.length, 3)
          })
      ))

    it.effect("the short-lived token rule is the Entra one: expired refused, short-lived served for half its life", () =>
      Effect.gen(function*() {
        yield* withCredential(
          {},
          () => json(200, imdsToken("dead", 0, { expires_on: String(T0s) })),
          (credential) =>
            Effect.gen(function*() {
              const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
              assert.strictEqual(error._tag, "ClientAuthenticationError")
              assert.include(error.message, "already expired")
            })
        )
        yield* withCredential(
          {},
          (_, i) => json(200, imdsToken(`short-${i}`, 20, { expires_on: "" })),
          (credential, requests) =>
            Effect.gen(function*() {
              assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "short-0")
              yield* TestClock.adjust(9_999)
              assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "short-0")
              assert.strictEqual(requests.length, 1)
              yield* TestClock.adjust(1)
              assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "short-1")
              assert.strictEqual(requests.length, 2)
            })
        )
      }))

    it.effect("refreshes in the background at half life", () =>
      withCredential(
        {},
        (_, i) => json(200, imdsToken(`tok-${i + 1}`)),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            yield* TestClock.adjust("11 hours")
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "tok-1")
            yield* settle
            assert.strictEqual(requests.length, 1)
            yield* TestClock.adjust("1 hour")
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "tok-1")
            yield* settle
            assert.strictEqual(requests.length, 2)
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "tok-2")
          })
      ))

    it.effect("100 concurrent cold getToken calls make one request", () =>
      Effect.gen(function*() {
        const latch = yield* Deferred.make<void>()
        return yield* withCredential(
          {},
          () => Effect.as(Deferred.await(latch), json(200, imdsToken("shared"))),
          (credential, requests) =>
            Effect.gen(function*() {
              const fibers = yield* Effect.forEach(
                Array.from({ length: 100 }),
                () => Effect.fork(credential.getToken(SCOPE))
              )
              yield* settle
              yield* Deferred.succeed(latch, undefined)
              const tokens = yield* Effect.forEach(fibers, Fiber.join)
              assert.strictEqual(tokens.length, 100)
              assert.isTrue(tokens.every((t) => tokenValue(t) === "shared"))
              assert.strictEqual(requests.length, 1)
            })
        )
      }))

    it.effect("400 identity not found is CredentialUnavailableError", () =>
      withCredential(
        { options: { clientId: "not-assigned" } },
        () => json(400, { error: "invalid_request", error_description: "Identity not found" }),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "Identity not found")
            assert.include(error.message, "not assigned")
            assert.strictEqual(requests.length, 1)
          })
      ))

    it.effect("Docker Desktop's 403 \"unreachable\" is CredentialUnavailableError", () =>
      withCredential(
        {},
        () =>
          text(
            403,
            "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: " +
              "connectex: A socket operation was attempted to an unreachable network.",
            "text/plain"
          ),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "IMDS is unreachable")
            assert.include(error.message, "Docker Desktop")
            assert.strictEqual(requests.length, 1)
          })
      ))

    it.effect("another 403 is ClientAuthenticationError", () =>
      withCredential(
        {},
        () => json(403, { error: "forbidden", error_description: "nope" }),
        (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            if (error._tag !== "ClientAuthenticationError") return
            assert.strictEqual(error.status, 403)
            assert.strictEqual(error.error, "forbidden")
            assert.strictEqual(error.errorDescription, "nope")
          })
      ))

    it.effect("a non-JSON 200 means something other than IMDS answered: unavailable", () =>
      withCredential(
        {},
        () => text(200, "<html><title>Captive portal</title></html>"),
        (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "Captive portal")
          })
      ))

    it.effect("a 200 without a usable token is ClientAuthenticationError", () =>
      withCredential(
        {},
        () => json(200, { access_token: "leaky-token", expires_on: "never" }),
        (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, "expires_on")
            assertNoSecret(error, "leaky-token")
          })
      ))

    it.effect("no response at all is CredentialUnavailableError after two retries, within 5 s", () =>
      withCredential({}, () => reset, (credential, requests) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
          yield* settle
          yield* TestClock.adjust("5 seconds")
          const done = yield* Fiber.poll(fiber)
          assert.isTrue(Option.isSome(done), "gave up within 5 s")
          const error = failureOf(yield* Fiber.join(fiber))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "no response from the IMDS endpoint")
          assert.include(error.message, "ECONNRESET")
          assert.include(error.message, "not an Azure VM")
          assert.strictEqual(requests.length, 3)
        })))

    describe("retry timelines", () => {
      it.effect("410 keeps retrying for at least 70 s, then fails with a typed error", () => {
        const times: Array<number> = []
        return withCredential(
          {},
          () =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              times.push(now)
              return json(410, { error: "gone", error_description: "IMDS is updating" })
            }),
          (credential, requests) =>
            Effect.gen(function*() {
              const error = failureOf(yield* driveClock(credential.getToken(SCOPE), 1000))
              assert.strictEqual(error._tag, "ClientAuthenticationError")
              if (error._tag !== "ClientAuthenticationError") return
              assert.strictEqual(error.status, 410)
              assert.include(error.message, "IMDS is being updated")
              assert.include(error.message, `after ${requests.length} attempts`)
              const elapsed = times[times.length - 1]! - times[0]!
              assert.isAtLeast(elapsed, 70_000)
              assert.isAtMost(elapsed, 140_000)
              // every wait is at least half the 3 s base of 410, at most the 64 s cap
              for (let i = 1; i < times.length; i++) {
                assert.isAtLeast(times[i]! - times[i - 1]!, 1500)
                assert.isAtMost(times[i]! - times[i - 1]!, 64_000)
              }
              console.log(`410 timeline (s): ${times.map((t) => ((t - T0) / 1000).toFixed(1)).join(", ")}`)
            })
        )
      })

      it.effect("429 waits for Retry-After", () => {
        const times: Array<number> = []
        return withCredential(
          {},
          (_, i) =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              times.push(now)
              return i === 0 ? json(429, { error: "throttled" }, { "retry-after": "7" }) : json(200, imdsToken("late"))
            }),
          (credential) =>
            Effect.gen(function*() {
              const exit = yield* driveClock(credential.getToken(SCOPE), 100)
              assert.isTrue(Exit.isSuccess(exit))
              assert.deepStrictEqual(times.map((t) => t - T0), [0, 7000])
            })
        )
      })

      it.effect("500 then success", () => {
        const times: Array<number> = []
        return withCredential(
          {},
          (_, i) =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              times.push(now)
              return i < 2 ? text(500, "", "text/plain") : json(200, imdsToken("third"))
            }),
          (credential, requests) =>
            Effect.gen(function*() {
              const exit = yield* driveClock(credential.getToken(SCOPE), 50)
              assert.isTrue(Exit.isSuccess(exit))
              if (Exit.isSuccess(exit)) assert.strictEqual(tokenValue(exit.value), "third")
              assert.strictEqual(requests.length, 3)
              // 800 ms base, doubled, jittered to 50–100 %
              assert.isAtLeast(times[1]! - times[0]!, 400)
              assert.isAtMost(times[1]! - times[0]!, 850)
              assert.isAtLeast(times[2]! - times[1]!, 800)
              assert.isAtMost(times[2]! - times[1]!, 1650)
            })
        )
      })

      it.effect("404 is retried; other 4xx are not", () =>
        Effect.gen(function*() {
          const retried = yield* withCredential(
            {},
            (_, i) => (i === 0 ? json(404, { error: "not_found" }) : json(200, imdsToken())),
            (credential, requests) => Effect.map(driveClock(credential.getToken(SCOPE), 100), () => requests.length)
          )
          assert.strictEqual(retried, 2)
          const notRetried = yield* withCredential(
            {},
            () => json(401, { error: "unauthorized" }),
            (credential, requests) => Effect.map(driveClock(credential.getToken(SCOPE), 100), () => requests.length)
          )
          assert.strictEqual(notRetried, 1)
        }))
    })

    describe("the probe (probe: true, as DefaultAzureCredential sets)", () => {
      it.effect("one request without the Metadata header, then the token request", () =>
        withCredential(
          { options: { probe: true } },
          (_, i) => (i === 0
            ? json(400, { error: "bad_request_102", error_description: "Required metadata header not specified" })
            : json(200, imdsToken("after-probe"))),
          (credential, requests) =>
            Effect.gen(function*() {
              assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "after-probe")
              assert.strictEqual(requests.length, 2)
              const probe = requests[0]!
              assert.strictEqual(probe.method, "GET")
              assert.strictEqual(probe.url.href, IMDS_URL)
              assert.isUndefined(probe.headers["metadata"])
              assert.strictEqual(probe.headers["accept"], "application/json")
              assert.strictEqual(requests[1]!.headers["metadata"], "true")
              // "available" is remembered: another resource does not probe again
              yield* credential.getToken("https://storage.azure.com/.default")
              assert.strictEqual(requests.length, 3)
              assert.strictEqual(requests[2]!.headers["metadata"], "true")
            })
        ))

      it.effect("a timeout is unavailable within the probe timeout, remembered for 5 minutes, then retried", () =>
        Effect.gen(function*() {
          let imdsUp = false
          return yield* withCredential(
            { options: { probe: true } },
            (r) =>
              imdsUp
                ? json(r.headers["metadata"] === "true" ? 200 : 400, imdsToken("late-imds"))
                : Effect.never,
            (credential, requests) =>
              Effect.gen(function*() {
                const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
                yield* settle
                yield* TestClock.adjust("999 millis")
                yield* settle
                assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
                yield* TestClock.adjust("1 millis")
                const error = failureOf(yield* Fiber.join(fiber))
                assert.strictEqual(error._tag, "CredentialUnavailableError")
                assert.include(error.message, "did not answer the probe within 1000 ms")
                assert.strictEqual(requests.length, 1)
                // remembered: fails at once, no request
                yield* TestClock.adjust("4 minutes")
                const again = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
                assert.strictEqual(again._tag, "CredentialUnavailableError")
                assert.strictEqual(requests.length, 1)
                // IMDS comes up late; after 5 minutes the probe runs again
                imdsUp = true
                yield* TestClock.adjust("1 minute")
                assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "late-imds")
                assert.strictEqual(requests.length, 3)
              })
          )
        }))

      it.effect("concurrent callers share one probe", () =>
        withCredential(
          { options: { probe: true } },
          (r) => json(r.headers["metadata"] === "true" ? 200 : 400, imdsToken()),
          (credential, requests) =>
            Effect.gen(function*() {
              yield* Effect.all(
                ["a/.default", "b/.default", "c/.default"].map((s) => credential.getToken(s)),
                { concurrency: "unbounded" }
              )
              assert.strictEqual(requests.filter((r) => r.headers["metadata"] === undefined).length, 1)
              assert.strictEqual(requests.length, 4)
            })
        ))

      it.effect("a 403 \"unreachable\" probe answer is unavailable; a refused connection too", () =>
        Effect.gen(function*() {
          const docker = yield* withCredential(
            { options: { probe: true } },
            () => text(403, "A socket operation was attempted to an unreachable network.", "text/plain"),
            (credential) => Effect.exit(credential.getToken(SCOPE))
          )
          const e1 = failureOf(docker)
          assert.strictEqual(e1._tag, "CredentialUnavailableError")
          assert.include(e1.message, "Docker Desktop")
          const refused = yield* withCredential(
            { options: { probe: true } },
            () => reset,
            (credential, requests) =>
              Effect.map(Effect.exit(credential.getToken(SCOPE)), (exit) => [exit, requests.length] as const)
          )
          const e2 = failureOf(refused[0])
          assert.strictEqual(e2._tag, "CredentialUnavailableError")
          assert.include(e2.message, "could not be reached")
          // no retries for the probe
          assert.strictEqual(refused[1], 1)
        }))

      it.effect("the probe timeout is configurable; pod identity hosts are not probed", () =>
        Effect.gen(function*() {
          const exit = yield* withCredential(
            { options: { probe: true, probeTimeoutMillis: 200, probeUnavailableMillis: 1000 } },
            () => Effect.never,
            (credential) =>
              Effect.gen(function*() {
                const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
                yield* TestClock.adjust("200 millis")
                return yield* Fiber.join(fiber)
              })
          )
          assert.include(failureOf(exit).message, "within 200 ms")
          assert.include(failureOf(exit).message, "remembered for 1 s")
          const pod = yield* withCredential(
            { options: { probe: true }, env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1:2579" } },
            () => json(200, imdsToken()),
            (credential, requests) => Effect.map(credential.getToken(SCOPE), () => requests)
          )
          assert.strictEqual(pod.length, 1)
          assert.strictEqual(pod[0]!.headers["metadata"], "true")
        }))
    })
  })

  describe("App Service, Functions, Container Apps (2019-08-01)", () => {
    const env = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: IDENTITY_HEADER }

    it.effect("sends the exact request", () =>
      withCredential({ env }, () =>
        json(200, {
          access_token: "app-service-token",
          expires_on: String(T0s + 86_400),
          resource: RESOURCE,
          token_type: "Bearer",
          client_id: "c"
        }), (credential, requests) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(tokenValue(token), "app-service-token")
          assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + 24 * HOUR)
          const r = requests[0]!
          assert.strictEqual(r.method, "GET")
          assert.strictEqual(`${r.url.origin}${r.url.pathname}`, env.IDENTITY_ENDPOINT)
          assert.deepStrictEqual(query(r), { "api-version": "2019-08-01", resource: RESOURCE })
          assert.strictEqual(r.headers["x-identity-header"], IDENTITY_HEADER)
          assert.strictEqual(r.headers["metadata"], "true")
          assert.isUndefined(r.headers["secret"])
          assert.strictEqual(r.body, "")
        })))

    for (
      const [option, param] of [["clientId", "client_id"], ["objectId", "object_id"], [
        "resourceId",
        "mi_res_id"
      ]] as const
    ) {
      it.effect(`${option} is sent as ${param}`, () =>
        withCredential(
          { env, options: { [option]: "id-1" } },
          () => json(200, { access_token: "t", expires_on: T0s + 3600 }),
          (credential, requests) =>
            Effect.gen(function*() {
              yield* credential.getToken(SCOPE)
              assert.strictEqual(query(requests[0]!)[param], "id-1")
            })
        ))
    }

    it.effect("redacts the secret header while the request runs", () => {
      let seen: ReadonlyArray<string | RegExp> = []
      return withCredential(
        { env },
        () =>
          Effect.map(FiberRef.get(Headers.currentRedactedNames), (names) => {
            seen = names
            return json(200, { access_token: "t", expires_in: 3600 })
          }),
        (credential) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            assert.includeMembers([...seen], ["authorization", "x-identity-header", "secret"])
            // and only while it runs
            assert.notInclude([...(yield* FiberRef.get(Headers.currentRedactedNames))], "x-identity-header")
          })
      )
    })

    it.effect("spans show the secret headers as <redacted>", () =>
      Effect.gen(function*() {
        const { spans, tracer } = recordingTracer()
        yield* withCredential(
          { env },
          () => json(200, { access_token: "t", expires_in: 3600 }),
          (credential) => credential.getToken(SCOPE)
        ).pipe(Effect.withTracer(tracer))
        const http = spans.find((s) => s.attributes.has("http.request.header.x-identity-header"))
        assert.isDefined(http)
        assert.strictEqual(String(http!.attributes.get("http.request.header.x-identity-header")), "<redacted>")
        const mi = spans.find((s) => s.name === "ManagedIdentityCredential.requestToken")
        assert.strictEqual(mi?.attributes.get("azure.identity.source"), "App Service")
        assert.strictEqual(mi?.attributes.get("azure.identity.resource"), RESOURCE)
        for (const span of spans) {
          for (const value of span.attributes.values()) assert.notInclude(String(value), IDENTITY_HEADER)
        }
      }))

    it.effect("a span per request to the endpoint, none for a token served from the cache", () =>
      Effect.gen(function*() {
        const { spans, tracer } = recordingTracer()
        const requests = yield* withCredential(
          { env },
          () => json(200, { access_token: "t", expires_in: 3600 }),
          (credential, requests) =>
            Effect.gen(function*() {
              for (let i = 0; i < 5; i++) yield* credential.getToken(SCOPE)
              return requests.length
            })
        ).pipe(Effect.withTracer(tracer))
        assert.strictEqual(requests, 1)
        const mi = spans.filter((s) => s.name.startsWith("ManagedIdentityCredential."))
        assert.deepStrictEqual(mi.map((s) => s.name), ["ManagedIdentityCredential.requestToken"])
        assert.strictEqual(mi[0]!.attributes.get("azure.identity.credential"), "ManagedIdentityCredential")
      }))

    it.effect("an error echoing the secret header never puts it in the error", () =>
      withCredential(
        { env },
        () => json(401, { statusCode: 401, message: `Bad X-IDENTITY-HEADER ${IDENTITY_HEADER}` }),
        (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, "Bad X-IDENTITY-HEADER <redacted>")
            assertNoSecret(error, IDENTITY_HEADER)
          })
      ))

    it.effect("a 500 is retried like the token client, then ClientAuthenticationError", () =>
      withCredential(
        { env },
        () => json(500, { statusCode: 500, message: "boom" }),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* driveClock(credential.getToken(SCOPE), 500))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, "try again later")
            assert.strictEqual(requests.length, 4)
          })
      ))

    it.effect("400 naming a missing identity is unavailable; another 400 is a failure", () =>
      Effect.gen(function*() {
        const missing = yield* withCredential(
          { env, options: { clientId: "x" } },
          () => json(400, { statusCode: 400, message: "No managed identity found for client id x" }),
          (credential) => Effect.exit(credential.getToken(SCOPE))
        )
        assert.strictEqual(failureOf(missing)._tag, "CredentialUnavailableError")
        const other = yield* withCredential(
          { env },
          () => json(400, { statusCode: 400, message: "Invalid resource" }),
          (credential) => Effect.exit(credential.getToken(SCOPE))
        )
        assert.strictEqual(failureOf(other)._tag, "ClientAuthenticationError")
      }))

    it.effect("an invalid endpoint URL is unavailable; a non-JSON 200 is a failure", () =>
      Effect.gen(function*() {
        const invalid = yield* withCredential(
          { env: { IDENTITY_ENDPOINT: "not a url", IDENTITY_HEADER } },
          () => json(200, {}),
          (credential) => Effect.exit(credential.getToken(SCOPE))
        )
        assert.strictEqual(failureOf(invalid)._tag, "CredentialUnavailableError")
        assert.include(failureOf(invalid).message, "URL is invalid")
        const html = yield* withCredential(
          { env },
          () => text(200, "<html><title>Welcome</title></html>"),
          (credential) => Effect.exit(credential.getToken(SCOPE))
        )
        assert.strictEqual(failureOf(html)._tag, "ClientAuthenticationError")
        assert.include(failureOf(html).message, "Welcome")
      }))

    it.effect("no answer is unavailable and names the variable", () =>
      withCredential({ env, options: { retryPolicy: fastRetry } }, () => reset, (credential) =>
        Effect.gen(function*() {
          const error = failureOf(yield* driveClock(credential.getToken(SCOPE), 10))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "IDENTITY_ENDPOINT")
        })))
  })

  describe("MSI_ENDPOINT + MSI_SECRET (2017-09-01: App Service, Azure ML)", () => {
    const env = { MSI_ENDPOINT: "http://127.0.0.1:41742/MSI/token/", MSI_SECRET }

    it.effect("App Service: the exact request, and the Linux date string", () =>
      withCredential({ env }, () =>
        json(200, {
          access_token: "legacy-token",
          expires_on: "11/27/2026 09:00:00 +00:00",
          resource: RESOURCE,
          token_type: "Bearer"
        }), (credential, requests) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(tokenValue(token), "legacy-token")
          assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + HOUR)
          const r = requests[0]!
          assert.strictEqual(r.method, "GET")
          assert.strictEqual(`${r.url.origin}${r.url.pathname}`, env.MSI_ENDPOINT)
          assert.deepStrictEqual(query(r), { "api-version": "2017-09-01", resource: RESOURCE })
          assert.strictEqual(r.headers["secret"], MSI_SECRET)
          assert.isUndefined(r.headers["metadata"])
          assert.isUndefined(r.headers["x-identity-header"])
        })))

    it.effect("App Service: the Windows date string, and clientid for a user-assigned identity", () =>
      withCredential(
        { env, options: { clientId: "uami-9" } },
        () => json(200, { access_token: "t", expires_on: "11/27/2026 9:00:00 AM +00:00" }),
        (credential, requests) =>
          Effect.gen(function*() {
            const token = yield* credential.getToken(SCOPE)
            assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + HOUR)
            assert.deepStrictEqual(query(requests[0]!), {
              "api-version": "2017-09-01",
              resource: RESOURCE,
              clientid: "uami-9"
            })
          })
      ))

    it.effect("object and resource ids are not supported by this API", () =>
      withCredential(
        { env, options: { resourceId: "/subscriptions/x" } },
        () => json(200, {}),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "client id only")
            assert.strictEqual(requests.length, 0)
          })
      ))

    it.effect("Azure ML: always sends clientid (DEFAULT_IDENTITY_CLIENT_ID) and Metadata; epoch expires_on", () =>
      withCredential(
        { env: { ...env, DEFAULT_IDENTITY_CLIENT_ID: "ml-default-id" } },
        () => json(200, { access_token: "ml-token", expires_on: T0s + 3600, token_type: "Bearer" }),
        (credential, requests) =>
          Effect.gen(function*() {
            const token = yield* credential.getToken(SCOPE)
            assert.strictEqual(tokenValue(token), "ml-token")
            assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), T0 + HOUR)
            const r = requests[0]!
            assert.deepStrictEqual(query(r), {
              "api-version": "2017-09-01",
              resource: RESOURCE,
              clientid: "ml-default-id"
            })
            assert.strictEqual(r.headers["secret"], MSI_SECRET)
            assert.strictEqual(r.headers["metadata"], "true")
          })
      ))

    it.effect("Azure ML: a user-assigned client id replaces the default", () =>
      withCredential(
        { env: { ...env, DEFAULT_IDENTITY_CLIENT_ID: "ml-default-id" }, options: { clientId: "ml-uami" } },
        () => json(200, { access_token: "t", expires_on: String(T0s + 3600) }),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            assert.strictEqual(query(requests[0]!).clientid, "ml-uami")
          })
      ))

    it.effect("the secret never appears in an error", () =>
      withCredential({ env }, () => json(400, { error: "bad", error_description: `secret ${MSI_SECRET} rejected` }), (
        credential
      ) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assertNoSecret(error, MSI_SECRET)
          assert.include(error.message, "<redacted>")
        })))
  })

  describe("Cloud Shell (MSI_ENDPOINT alone)", () => {
    const env = { MSI_ENDPOINT: "http://localhost:50342/oauth2/token" }

    it.effect("POSTs the resource as a form with Metadata: true", () =>
      withCredential({ env }, () =>
        json(200, {
          access_token: "cloud-shell-token",
          expires_in: "3599",
          expires_on: String(T0s + 3599),
          token_type: "Bearer"
        }), (credential, requests) =>
        Effect.gen(function*() {
          const token = yield* credential.getToken(SCOPE)
          assert.strictEqual(tokenValue(token), "cloud-shell-token")
          const r = requests[0]!
          assert.strictEqual(r.method, "POST")
          assert.strictEqual(r.url.href, env.MSI_ENDPOINT)
          assert.strictEqual(r.headers["content-type"], "application/x-www-form-urlencoded")
          assert.strictEqual(r.headers["metadata"], "true")
          assert.strictEqual(r.body, "resource=https%3A%2F%2Fvault.azure.net")
          assert.deepStrictEqual(r.form, { resource: RESOURCE })
        })))

    it.effect("user-assigned identities are refused without a request", () =>
      withCredential(
        { env, options: { clientId: "x" } },
        () => json(200, {}),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "Cloud Shell does not support the user-assigned identity with client id x")
            assert.strictEqual(requests.length, 0)
          })
      ))
  })

  it.effect("unsupported selections name the identity", () =>
    Effect.gen(function*() {
      for (
        const [options, words] of [
          [{ objectId: "o-1" }, "object id o-1"],
          [{ resourceId: "/subscriptions/r" }, "the user-assigned identity /subscriptions/r"]
        ] as const
      ) {
        const exit = yield* withCredential(
          { env: { MSI_ENDPOINT: "http://127.0.0.1:1/t" }, options },
          () => json(200, {}),
          (credential) => Effect.exit(credential.getToken(SCOPE))
        )
        assert.include(failureOf(exit).message, words)
      }
    }))

  describe("Service Fabric", () => {
    const thumbprint = "AB".repeat(20)
    const env = {
      IDENTITY_ENDPOINT: "https://127.0.0.1:2377/metadata/identity/oauth2/token",
      IDENTITY_HEADER,
      IDENTITY_SERVER_THUMBPRINT: thumbprint.toLowerCase().match(/../g)!.join(":")
    }

    it.effect("sends the exact request through a client pinned to the thumbprint", () => {
      const pins: Array<PinnedHttpClient.Thumbprint> = []
      return withCredential(
        {
          env,
          pinned: (client) => ({
            make: (pin) =>
              Effect.sync(() => {
                pins.push(pin)
                return client
              })
          })
        },
        () => json(200, { token_type: "Bearer", access_token: "sf-token", expires_on: T0s + 3600, resource: RESOURCE }),
        (credential, requests) =>
          Effect.gen(function*() {
            const token = yield* credential.getToken(SCOPE)
            assert.strictEqual(tokenValue(token), "sf-token")
            assert.deepStrictEqual(pins, [{ algorithm: "sha1", hex: thumbprint }])
            const r = requests[0]!
            assert.strictEqual(r.method, "GET")
            assert.strictEqual(`${r.url.origin}${r.url.pathname}`, env.IDENTITY_ENDPOINT)
            assert.deepStrictEqual(query(r), { "api-version": "2019-07-01-preview", resource: RESOURCE })
            assert.strictEqual(r.headers["secret"], IDENTITY_HEADER)
            assert.isUndefined(r.headers["x-identity-header"])
            // the pinned client is built once per layer
            yield* credential.getToken("https://storage.azure.com/.default")
            assert.strictEqual(pins.length, 1)
          })
      )
    })

    it.effect("a certificate that does not match the pin is refused at once, without retries", () =>
      withCredential(
        {
          env,
          pinned: () => ({
            make: () =>
              Effect.succeed(HttpClient.make((request) =>
                Effect.fail(
                  new HttpClientError.RequestError({
                    request,
                    reason: "Transport",
                    cause: Object.assign(new Error("mismatch"), { code: PinnedHttpClient.thumbprintMismatchCode })
                  })
                )
              ))
          })
        },
        () => json(200, {}),
        (credential) =>
          Effect.gen(function*() {
            const exit = yield* driveClock(credential.getToken(SCOPE), 100, 5)
            const error = failureOf(exit)
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, "not IDENTITY_SERVER_THUMBPRINT")
            assert.include(error.message, "the request was not sent")
            assertNoSecret(error, IDENTITY_HEADER)
          })
      ))

    it.effect("ManagedIdentityNotFound (400) is unavailable; SecretHeaderNotFound (401) a failure", () =>
      Effect.gen(function*() {
        const notFound = yield* withCredential(
          { env },
          () => json(400, { error: { code: "ManagedIdentityNotFound", message: "No identity" } }),
          (credential) => Effect.exit(credential.getToken(SCOPE))
        )
        assert.strictEqual(failureOf(notFound)._tag, "CredentialUnavailableError")
        const badSecret = yield* withCredential(
          { env },
          () => json(401, { error: { code: "SecretHeaderNotFound", message: "Secret is not found in the request" } }),
          (credential) => Effect.exit(credential.getToken(SCOPE))
        )
        const error = failureOf(badSecret)
        assert.strictEqual(error._tag, "ClientAuthenticationError")
        if (error._tag !== "ClientAuthenticationError") return
        assert.strictEqual(error.error, "SecretHeaderNotFound")
        assert.include(error.message, "Secret is not found")
      }))

    it.effect("without a PinnedHttpClient, or with a bad thumbprint, or a user-assigned id: unavailable", () =>
      Effect.gen(function*() {
        const cases: ReadonlyArray<[Setup, string]> = [
          [{ env, pinned: "none" }, "PinnedHttpClient"],
          [{ env: { ...env, IDENTITY_SERVER_THUMBPRINT: "xyz" } }, "IDENTITY_SERVER_THUMBPRINT is invalid"],
          [{ env: { ...env, IDENTITY_SERVER_THUMBPRINT: "ABCD" } }, "expected 40 (SHA-1) or 64 (SHA-256)"],
          [{ env, options: { clientId: "c" } }, "cluster configuration"]
        ]
        for (const [setup, hint] of cases) {
          const [exit, count] = yield* withCredential(
            setup,
            () => json(200, {}),
            (credential, requests) =>
              Effect.map(Effect.exit(credential.getToken(SCOPE)), (exit) => [exit, requests.length] as const)
          )
          const error = failureOf(exit)
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, hint)
          assert.strictEqual(count, 0)
        }
      }))
  })

  describe("Azure Arc", () => {
    const keyDirectory = "/arc-test/tokens"
    const keyPath = `${keyDirectory}/0123abcd.key`
    const env = {
      IDENTITY_ENDPOINT: "http://localhost:40342/metadata/identity/oauth2/token",
      IMDS_ENDPOINT: "http://localhost:40342"
    }
    const fileInfo = (size: number): FileSystem.File.Info => ({
      type: "File",
      mtime: Option.none(),
      atime: Option.none(),
      birthtime: Option.none(),
      dev: 0,
      ino: Option.none(),
      mode: 0o640,
      nlink: Option.none(),
      uid: Option.none(),
      gid: Option.none(),
      rdev: Option.none(),
      size: FileSystem.Size(size),
      blksize: Option.none(),
      blocks: Option.none()
    })
    const files = (contents: Record<string, string>): Partial<FileSystem.FileSystem> => ({
      stat: (path) =>
        path in contents
          ? Effect.succeed(fileInfo(new TextEncoder().encode(contents[path]!).length))
          : Effect.fail(
            new PlatformError.SystemError({
              reason: "NotFound",
              module: "FileSystem",
              method: "stat",
              pathOrDescriptor: path
            })
          ),
      readFile: (path) =>
        path in contents
          ? Effect.succeed(new TextEncoder().encode(contents[path]!))
          : Effect.fail(
            new PlatformError.SystemError({
              reason: "PermissionDenied",
              module: "FileSystem",
              method: "readFile",
              pathOrDescriptor: path
            })
          )
    })
    const challenge = (realm: string | undefined) =>
      new Response("", {
        status: 401,
        headers: realm === undefined ? {} : { "www-authenticate": `Basic realm=${realm}` }
      })
    const arcHandler = (realm: string | undefined) => (r: Recorded) =>
      r.headers["authorization"] === undefined
        ? challenge(realm)
        : r.headers["authorization"] === `Basic ${ARC_KEY}`
        ? json(200, imdsToken("arc-token"))
        : json(401, { error: "unauthorized", error_description: `wrong key ${r.headers["authorization"]}` })

    it.effect("challenge, key file, then the same request with Authorization: Basic <key>", () =>
      withCredential(
        { env, options: { azureArc: { keyDirectory } }, fs: files({ [keyPath]: `${ARC_KEY}\n` }) },
        arcHandler(keyPath),
        (credential, requests) =>
          Effect.gen(function*() {
            const token = yield* credential.getToken(SCOPE)
            assert.strictEqual(tokenValue(token), "arc-token")
            assert.strictEqual(requests.length, 2)
            for (const r of requests) {
              assert.strictEqual(r.method, "GET")
              assert.strictEqual(`${r.url.origin}${r.url.pathname}`, env.IDENTITY_ENDPOINT)
              assert.deepStrictEqual(query(r), { "api-version": "2020-06-01", resource: RESOURCE })
              assert.strictEqual(r.headers["metadata"], "true")
            }
            assert.isUndefined(requests[0]!.headers["authorization"])
            assert.strictEqual(requests[1]!.headers["authorization"], `Basic ${ARC_KEY}`)
          })
      ))

    it.effect("the agent found on disk selects Arc at its default endpoint", () => {
      const checked: Array<string> = []
      return withCredential(
        {
          options: { azureArc: { himdsPaths: ["/nothing/here", "/fake/azcmagent/himds"], keyDirectory } },
          fs: {
            ...files({ [keyPath]: ARC_KEY }),
            access: (path) =>
              Effect.suspend(() => {
                checked.push(path)
                return path === "/fake/azcmagent/himds"
                  ? Effect.void
                  : Effect.fail(
                    new PlatformError.SystemError({
                      reason: "NotFound",
                      module: "FileSystem",
                      method: "access",
                      pathOrDescriptor: path
                    })
                  )
              })
          }
        },
        arcHandler(keyPath),
        (credential, requests) =>
          Effect.gen(function*() {
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "arc-token")
            assert.deepStrictEqual(checked, ["/nothing/here", "/fake/azcmagent/himds"])
            assert.strictEqual(
              `${requests[0]!.url.origin}${requests[0]!.url.pathname}`,
              "http://127.0.0.1:40342/metadata/identity/oauth2/token"
            )
          })
      )
    })

    it.effect("by default the agent is looked for at the platform's path (through FileSystem only)", () => {
      const checked: Array<string> = []
      return withCredential(
        {
          fs: {
            access: (path) =>
              Effect.suspend(() => {
                checked.push(path)
                return Effect.fail(
                  new PlatformError.SystemError({
                    reason: "NotFound",
                    module: "FileSystem",
                    method: "access",
                    pathOrDescriptor: path
                  })
                )
              })
          }
        },
        () => json(200, imdsToken()),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            assert.strictEqual(`${requests[0]!.url.origin}${requests[0]!.url.pathname}`, IMDS_URL)
            if (process.platform === "linux") assert.deepStrictEqual(checked, ["/opt/azcmagent/bin/himds"])
          })
      )
    })

    const refusals: ReadonlyArray<[string, string | undefined, Record<string, string>, string]> = [
      ["a challenge without WWW-Authenticate", undefined, { [keyPath]: ARC_KEY }, "without a \"WWW-Authenticate"],
      [
        "a key file in another directory",
        "/etc/arc/0123abcd.key",
        { "/etc/arc/0123abcd.key": ARC_KEY },
        "not in the Azure Arc agent's token directory"
      ],
      [
        "a path escaping the directory",
        `${keyDirectory}/../../etc/x.key`,
        {},
        "not in the Azure Arc agent's token directory"
      ],
      [
        "a key file not named *.key",
        `${keyDirectory}/secret.txt`,
        { [`${keyDirectory}/secret.txt`]: ARC_KEY },
        "not named *.key"
      ],
      [
        "a key file larger than 4096 bytes",
        keyPath,
        { [keyPath]: ARC_KEY + "x".repeat(4096) },
        "larger than 4096 bytes"
      ],
      ["an empty key file", keyPath, { [keyPath]: "  \n" }, "is empty"],
      ["an unreadable key file", keyPath, {}, "NotFound"]
    ]
    for (const [title, realm, contents, hint] of refusals) {
      it.effect(`refuses ${title}, with a clear error and no key in it`, () =>
        withCredential(
          { env, options: { azureArc: { keyDirectory } }, fs: files(contents) },
          arcHandler(realm),
          (credential, requests) =>
            Effect.gen(function*() {
              const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
              assert.strictEqual(error._tag, "ClientAuthenticationError")
              assert.include(error.message, "Azure Arc")
              assert.include(error.message, hint)
              assertNoSecret(error, ARC_KEY)
              // the key is never sent anywhere
              assert.strictEqual(requests.length, 1)
            })
        ))
    }

    it.effect("a rejected key: the error never contains it, even when the agent echoes it", () =>
      withCredential(
        { env, options: { azureArc: { keyDirectory } }, fs: files({ [keyPath]: ARC_KEY }) },
        (r) =>
          r.headers["authorization"] === undefined
            ? challenge(keyPath)
            : json(403, { error: "forbidden", error_description: `key ${ARC_KEY} is stale` }),
        (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            assert.include(error.message, "key <redacted> is stale")
            assertNoSecret(error, ARC_KEY)
          })
      ))

    it.effect("a quoted realm and Windows-style directories (case-insensitive) are accepted", () =>
      withCredential(
        {
          env,
          options: { azureArc: { keyDirectory: "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\" } },
          fs: files({ "c:\\programdata\\azureconnectedmachineagent\\tokens\\a1.key": ARC_KEY })
        },
        arcHandler("\"c:\\programdata\\azureconnectedmachineagent\\tokens\\a1.key\""),
        (credential) => Effect.map(credential.getToken(SCOPE), (t) => assert.strictEqual(tokenValue(t), "arc-token"))
      ))

    it.effect("user-assigned identities are refused", () =>
      withCredential(
        { env, options: { clientId: "c" } },
        () => json(200, {}),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "Azure Arc does not support")
            assert.strictEqual(requests.length, 0)
          })
      ))

    it.effect("an answer other than the challenge is read as usual", () =>
      withCredential(
        { env, options: { azureArc: { keyDirectory } } },
        () => json(400, { error: "invalid_request", error_description: "Identity not found" }),
        (credential) =>
          Effect.map(Effect.exit(credential.getToken(SCOPE)), (exit) =>
            assert.strictEqual(failureOf(exit)._tag, "CredentialUnavailableError"))
      ))
  })

  it.effect("no secret header value reaches a span, on any host", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const keyPath = "/arc-test/tokens/k.key"
      yield* withCredential(
        { env: { MSI_ENDPOINT: "http://127.0.0.1:1/msi", MSI_SECRET } },
        () => json(200, { access_token: "t", expires_in: 3600 }),
        (credential) => credential.getToken(SCOPE)
      ).pipe(Effect.withTracer(tracer))
      yield* withCredential(
        {
          env: {
            IDENTITY_ENDPOINT: "https://127.0.0.1:2/t",
            IDENTITY_HEADER,
            IDENTITY_SERVER_THUMBPRINT: "AB".repeat(20)
          }
        },
        () => json(200, { access_token: "t", expires_in: 3600 }),
        (credential) => credential.getToken(SCOPE)
      ).pipe(Effect.withTracer(tracer))
      yield* withCredential(
        {
          env: { IDENTITY_ENDPOINT: "http://127.0.0.1:3/t", IMDS_ENDPOINT: "http://127.0.0.1:3" },
          options: { azureArc: { keyDirectory: "/arc-test/tokens" } },
          fs: {
            stat: () => Effect.succeed({ type: "File", size: FileSystem.Size(ARC_KEY.length) } as FileSystem.File.Info),
            readFile: () => Effect.succeed(new TextEncoder().encode(ARC_KEY))
          }
        },
        (r) =>
          r.headers["authorization"] === undefined
            ? new Response("", { status: 401, headers: { "www-authenticate": `Basic realm=${keyPath}` } })
            : json(200, { access_token: "t", expires_in: 3600 }),
        (credential) => credential.getToken(SCOPE)
      ).pipe(Effect.withTracer(tracer))
      const headerValues = spans.flatMap((s) =>
        [...s.attributes].filter(([k]) => k.startsWith("http.request.header.")).map(([k, v]) => [k, String(v)])
      )
      const secretHeaders = headerValues.filter(([k]) => /\.(secret|authorization|x-identity-header)$/.test(k!))
      assert.isAtLeast(secretHeaders.length, 3)
      for (const [, v] of secretHeaders) assert.strictEqual(v, "<redacted>")
      for (const span of spans) {
        for (const value of span.attributes.values()) {
          for (const secret of [MSI_SECRET, IDENTITY_HEADER, ARC_KEY]) assert.notInclude(String(value), secret)
        }
      }
    }))

  describe("source detection", () => {
    const all = {
      AZURE_FEDERATED_TOKEN_FILE: "/var/run/secrets/azure/tokens/azure-identity-token",
      AZURE_TENANT_ID: "tenant-1",
      AZURE_CLIENT_ID: "client-1",
      AZURE_AUTHORITY_HOST: "https://login.example.test",
      IDENTITY_ENDPOINT: "http://127.0.0.1:1/identity",
      IDENTITY_HEADER,
      IDENTITY_SERVER_THUMBPRINT: "CD".repeat(20),
      MSI_ENDPOINT: "http://127.0.0.1:2/msi",
      MSI_SECRET,
      IMDS_ENDPOINT: "http://127.0.0.1:3"
    }
    const without = (...keys: Array<keyof typeof all>) =>
      Object.fromEntries(Object.entries(all).filter(([k]) => !keys.includes(k as keyof typeof all)))
    const firstRequest = (env: Record<string, string>) =>
      withCredential(
        { env, fs: { readFileString: () => Effect.succeed("federated-jwt") } },
        () => json(200, { access_token: "t", expires_in: 3600 }),
        (credential, requests) => Effect.map(Effect.exit(credential.getToken(SCOPE)), () => requests[0])
      )

    it.effect("follows the documented order", () =>
      Effect.gen(function*() {
        const exchange = yield* firstRequest(all)
        assert.strictEqual(exchange!.url.href, "https://login.example.test/tenant-1/oauth2/v2.0/token")
        const fabric = yield* firstRequest(without("AZURE_FEDERATED_TOKEN_FILE"))
        assert.strictEqual(query(fabric!)["api-version"], "2019-07-01-preview")
        const appService = yield* firstRequest(without("AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_SERVER_THUMBPRINT"))
        assert.strictEqual(query(appService!)["api-version"], "2019-08-01")
        const legacy = yield* firstRequest(without("AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_HEADER"))
        assert.strictEqual(query(legacy!)["api-version"], "2017-09-01")
        const cloudShell = yield* firstRequest(without("AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_HEADER", "MSI_SECRET"))
        assert.strictEqual(cloudShell!.method, "POST")
        const arc = yield* firstRequest(without("AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_HEADER", "MSI_ENDPOINT"))
        assert.strictEqual(query(arc!)["api-version"], "2020-06-01")
        const imds = yield* firstRequest(
          without("AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT")
        )
        assert.strictEqual(query(imds!)["api-version"], "2018-02-01")
        // the token exchange needs all three; without a tenant it is not chosen
        const noTenant = yield* firstRequest(without("AZURE_TENANT_ID"))
        assert.strictEqual(query(noTenant!)["api-version"], "2019-07-01-preview")
      }))

    it.effect("IDENTITY_ENDPOINT alone is an incomplete environment", () =>
      withCredential({ env: { IDENTITY_ENDPOINT: "http://127.0.0.1:1/x" } }, () => json(200, {}), (
        credential,
        requests
      ) =>
        Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
          assert.strictEqual(error._tag, "CredentialUnavailableError")
          assert.include(error.message, "incomplete")
          assert.strictEqual(requests.length, 0)
        })))

    it.effect("empty variables count as unset", () =>
      withCredential(
        { env: { IDENTITY_ENDPOINT: "", IDENTITY_HEADER: "", MSI_ENDPOINT: " " } },
        () => json(200, imdsToken()),
        (credential, requests) =>
          Effect.gen(function*() {
            yield* credential.getToken(SCOPE)
            assert.strictEqual(`${requests[0]!.url.origin}${requests[0]!.url.pathname}`, IMDS_URL)
          })
      ))
  })

  describe("token exchange (AKS workload identity)", () => {
    const env = {
      AZURE_FEDERATED_TOKEN_FILE: "/var/run/secrets/azure/tokens/azure-identity-token",
      AZURE_TENANT_ID: "tenant-1",
      AZURE_CLIENT_ID: "client-from-env",
      AZURE_AUTHORITY_HOST: "https://login.example.test"
    }
    const FEDERATED = "federated-jwt-value"

    it.effect("delegates to WorkloadIdentityCredential, built once per layer", () => {
      let reads = 0
      return withCredential(
        {
          env,
          options: { clientId: "client-from-option" },
          fs: {
            readFileString: () =>
              Effect.sync(() => {
                reads++
                return `${FEDERATED}\n`
              })
          }
        },
        () => json(200, { token_type: "Bearer", access_token: "exchanged", expires_in: 3600 }),
        (credential, requests) =>
          Effect.gen(function*() {
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE)), "exchanged")
            assert.strictEqual(tokenValue(yield* credential.getToken(SCOPE, { tenantId: "elsewhere" })), "exchanged")
            assert.strictEqual(requests.length, 1)
            assert.strictEqual(reads, 1)
            const r = requests[0]!
            assert.strictEqual(r.method, "POST")
            assert.strictEqual(r.url.href, "https://login.example.test/tenant-1/oauth2/v2.0/token")
            assert.strictEqual(r.form.client_id, "client-from-option")
            assert.strictEqual(r.form.client_assertion, FEDERATED)
            assert.strictEqual(r.form.scope, SCOPE)
            assert.strictEqual(credential.name, "ManagedIdentityCredential")
          })
      )
    })

    it.effect("its errors are this credential's, and say where they come from", () =>
      withCredential(
        { env, fs: { readFileString: () => Effect.succeed("") } },
        () => json(200, {}),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.strictEqual(error.credential, "ManagedIdentityCredential")
            assert.include(error.message, "token exchange")
            assert.include(error.message, "empty")
            assert.strictEqual(requests.length, 0)
          })
      ))

    it.effect("a rejected exchange keeps Entra's fields", () =>
      withCredential(
        { env, fs: { readFileString: () => Effect.succeed(FEDERATED) } },
        () =>
          json(400, {
            error: "invalid_client",
            error_description: "AADSTS700024: Client assertion is not within its valid time range.",
            error_codes: [700024]
          }),
        (credential) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "ClientAuthenticationError")
            if (error._tag !== "ClientAuthenticationError") return
            assert.strictEqual(error.credential, "ManagedIdentityCredential")
            assert.deepStrictEqual(error.errorCodes, [700024])
            assert.include(error.message, "AADSTS700024")
            assertNoSecret(error, FEDERATED)
          })
      ))

    it.effect("object or resource ids cannot select the exchange's identity", () =>
      withCredential(
        { env, options: { objectId: "o" } },
        () => json(200, {}),
        (credential) =>
          Effect.map(Effect.exit(credential.getToken(SCOPE)), (exit) => {
            const error = failureOf(exit)
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "client id only")
          })
      ))

    it.effect("takes exactly one scope too", () =>
      withCredential(
        { env },
        () => json(200, {}),
        (credential) =>
          Effect.map(
            Effect.exit(credential.getToken([SCOPE, "b/.default"])),
            (exit) => assert.include(failureOf(exit).message, "exactly one scope")
          )
      ))
  })

  describe("options and scopes", () => {
    it.effect("exactly one scope per request", () =>
      withCredential({}, () => json(200, imdsToken()), (credential, requests) =>
        Effect.gen(function*() {
          const two = failureOf(
            yield* Effect.exit(credential.getToken([SCOPE, "https://graph.microsoft.com/.default"]))
          )
          assert.strictEqual(two._tag, "CredentialUnavailableError")
          assert.include(two.message, "exactly one scope per request, got 2")
          const none = failureOf(yield* Effect.exit(credential.getToken([])))
          assert.include(none.message, "no scope")
          const bad = failureOf(yield* Effect.exit(credential.getToken("has space")))
          assert.include(bad.message, "invalid scope")
          assert.strictEqual(requests.length, 0)
        })))

    it.effect("at most one of clientId, objectId and resourceId", () =>
      withCredential(
        { options: { clientId: "c", objectId: "o" } },
        () => json(200, imdsToken()),
        (credential, requests) =>
          Effect.gen(function*() {
            const error = failureOf(yield* Effect.exit(credential.getToken(SCOPE)))
            assert.strictEqual(error._tag, "CredentialUnavailableError")
            assert.include(error.message, "at most one of clientId, objectId and resourceId")
            assert.include(error.message, "clientId \"c\", objectId \"o\"")
            assert.strictEqual(requests.length, 0)
          })
      ))

    it.effect("layerConfig takes AZURE_CLIENT_ID as the user-assigned client id", () => {
      const http = mockHttp(() => json(200, imdsToken()))
      return Effect.gen(function*() {
        yield* setNow
        yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual(query(http.requests[0]!).client_id, "env-client")
      }).pipe(
        Effect.provide(
          ManagedIdentityCredential.layerConfig().pipe(
            Layer.provide(Layer.merge(http.layer, FileSystem.layerNoop({})))
          )
        ),
        withEnv({ AZURE_CLIENT_ID: "env-client" })
      )
    })

    it.effect("layerConfig without AZURE_CLIENT_ID is system-assigned; a config error is unavailable", () => {
      const http = mockHttp(() => json(200, imdsToken()))
      const deps = Layer.merge(http.layer, FileSystem.layerNoop({}))
      return Effect.gen(function*() {
        yield* setNow
        yield* TokenCredential.getToken(SCOPE).pipe(
          Effect.provide(ManagedIdentityCredential.layerConfig().pipe(Layer.provide(deps)))
        )
        assert.deepStrictEqual(Object.keys(query(http.requests[0]!)).sort(), ["api-version", "resource"])
        const exit = yield* Effect.exit(
          TokenCredential.getToken(SCOPE).pipe(
            Effect.provide(
              ManagedIdentityCredential.layerConfig({ clientId: Config.string("MI_CLIENT_ID") }).pipe(
                Layer.provide(deps)
              )
            )
          )
        )
        const error = failureOf(exit)
        assert.strictEqual(error._tag, "CredentialUnavailableError")
        assert.include(error.message, "MI_CLIENT_ID")
      }).pipe(withEnv({}))
    })
  })
})

const fastRetry = {
  maxRetries: 2,
  baseDelayMillis: 1,
  maxDelayMillis: 2,
  maxElapsedMillis: 1000,
  attemptTimeoutMillis: 1000,
  retryStatus: (s: number) => s >= 500
}

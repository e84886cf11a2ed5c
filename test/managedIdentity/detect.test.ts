import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { defaultRetryPolicy } from "../../src/internal/http.js"
import * as AzureArc from "../../src/internal/managedIdentity/azureArc.js"
import { challengePath, checkKeyPath } from "../../src/internal/managedIdentity/azureArc.js"
import { arcPaths, currentPlatform, detect } from "../../src/internal/managedIdentity/detect.js"
import { withEnv } from "../support/helpers.js"
import { mockHttp } from "../support/mockHttp.js"

const base = { clientId: undefined, imdsEndpoint: undefined, himdsPaths: undefined, arcKeyDirectory: undefined }

describe("managed identity source detection", () => {
  it.effect("Arc paths per platform", () =>
    Effect.gen(function*() {
      const linux = yield* arcPaths({ ...base, platform: "linux" })
      assert.deepStrictEqual(linux.himdsPaths, ["/opt/azcmagent/bin/himds"])
      assert.deepStrictEqual(linux.keyDirectory, Option.some("/var/opt/azcmagent/tokens"))
      const windows = yield* arcPaths({ ...base, platform: "win32" }).pipe(
        withEnv({ ProgramFiles: "D:\\Programs", ProgramData: "D:\\Data" })
      )
      assert.deepStrictEqual(windows.himdsPaths, ["D:\\Programs\\AzureConnectedMachineAgent\\himds.exe"])
      assert.deepStrictEqual(windows.keyDirectory, Option.some("D:\\Data\\AzureConnectedMachineAgent\\Tokens"))
      const windowsDefaults = yield* arcPaths({ ...base, platform: "win32" }).pipe(withEnv({}))
      assert.deepStrictEqual(
        windowsDefaults.keyDirectory,
        Option.some("C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens")
      )
      const mac = yield* arcPaths({ ...base, platform: "darwin" })
      assert.deepStrictEqual(mac.himdsPaths, [])
      assert.isTrue(Option.isNone(mac.keyDirectory))
      const overridden = yield* arcPaths({ ...base, platform: "darwin", himdsPaths: ["/x"], arcKeyDirectory: "/k" })
      assert.deepStrictEqual(overridden, { himdsPaths: ["/x"], keyDirectory: Option.some("/k") })
      assert.strictEqual(currentPlatform(), process.platform)
    }).pipe(withEnv({})))

  it.effect("Arc on a platform without a key directory refuses the challenge", () =>
    Effect.gen(function*() {
      const detected = yield* detect(
        { ...base, platform: "darwin" },
        FileSystem.makeNoop({})
      ).pipe(withEnv({ IDENTITY_ENDPOINT: "http://127.0.0.1:1/t", IMDS_ENDPOINT: "http://127.0.0.1:1" }))
      assert.strictEqual(detected._tag, "AzureArc")
      if (detected._tag === "AzureArc") assert.isTrue(Option.isNone(detected.keyDirectory))
    }))

  it("key file paths", () => {
    assert.isTrue(checkKeyPath("/var/opt/azcmagent/tokens/a.key", "/var/opt/azcmagent/tokens/")._tag === "Right")
    assert.isTrue(checkKeyPath("/var/opt/azcmagent/tokens/sub/a.key", "/var/opt/azcmagent/tokens")._tag === "Left")
    assert.isTrue(checkKeyPath("/VAR/opt/azcmagent/tokens/a.key", "/var/opt/azcmagent/tokens")._tag === "Left")
    assert.isTrue(checkKeyPath("a.key", "/var/opt/azcmagent/tokens")._tag === "Left")
    assert.isTrue(checkKeyPath("/var/opt/azcmagent/tokens/.key", "/var/opt/azcmagent/tokens")._tag === "Left")
    assert.isTrue(checkKeyPath("C:\\PROGRAMDATA\\Tokens\\A.KEY", "C:\\ProgramData\\Tokens")._tag === "Right")
    assert.deepStrictEqual(challengePath("Basic realm=/a/b.key"), Option.some("/a/b.key"))
    assert.deepStrictEqual(challengePath("basic REALM = \"/a b/c.key\""), Option.some("/a b/c.key"))
    assert.isTrue(Option.isNone(challengePath("Bearer realm=x")))
    assert.isTrue(Option.isNone(challengePath("Basic realm=")))
    assert.isTrue(Option.isNone(challengePath(undefined)))
  })
})

describe("Azure Arc source on a platform without the agent", () => {
  it.effect("refuses to read a key file", () =>
    Effect.gen(function*() {
      const http = mockHttp(() =>
        new Response("", { status: 401, headers: { "www-authenticate": "Basic realm=/tmp/x.key" } })
      )
      const source = AzureArc.make(
        {
          credential: "ManagedIdentityCredential",
          client: http.client,
          identity: { _tag: "SystemAssigned" },
          retryPolicy: defaultRetryPolicy
        },
        { endpoint: "http://127.0.0.1:40342/t", endpointSource: "IDENTITY_ENDPOINT", keyDirectory: Option.none() },
        FileSystem.makeNoop({})
      )
      const error = yield* Effect.flip(source.getToken("https://vault.azure.net"))
      assert.include(error.message, "Linux and Windows only")
      assert.strictEqual(http.requests.length, 1)
    }))
})

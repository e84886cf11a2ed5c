/**
 * AzurePowerShellCredential: with a mock CommandExecutor (argv, environment, timeout under TestClock, cache), and
 * against a stub `pwsh` shell script that the test writes into a directory of its own and puts first on the child's
 * PATH (through the `environment` option; the machine's PowerShell is never run).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { AzurePowerShellCredential, TokenCredential } from "../src/index.js"
import * as IdentityNode from "../src/node.js"
import {
  assertExited,
  assertToken,
  callLog,
  getTokenExit,
  mockToolHarness,
  unavailableReasonOf,
  writeStub
} from "./support/developerTool.js"
import { setNow, withEnv } from "./support/helpers.js"
import type { Reply } from "./support/mockCommand.js"
import { failure, hang, mockExecutor, notFound, output } from "./support/mockCommand.js"

const SCOPE = "https://management.azure.com/.default"
const TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJmYWtlIjoicHdzaCJ9.cHdzaC1zaWduYXR1cmU"
const EXPIRES = 4102444800 // 2100-01-01T00:00:00Z

const answer = (extra: Record<string, unknown> = {}) => JSON.stringify({ Token: TOKEN, ExpiresOn: EXPIRES, ...extra })

const reasonOf = unavailableReasonOf(TOKEN, "cHdzaC1zaWduYXR1cmU")

const withPwsh = mockToolHarness(AzurePowerShellCredential.layer)

const decodeScript = (encoded: string): string => Buffer.from(encoded, "base64").toString("utf16le")

describe("AzurePowerShellCredential with a mock CommandExecutor", () => {
  it.effect("runs pwsh with a fixed encoded script; resource and tenant only in the environment; cached", () =>
    withPwsh(() => output(`WARNING: something\n${answer()}\n`), (credential, commands) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(Redacted.value(token.token), TOKEN)
        assert.strictEqual(DateTime.toEpochMillis(token.expiresOn), EXPIRES * 1000)
        const c = commands[0]!
        assert.strictEqual(c.executable, "pwsh")
        assert.deepStrictEqual(c.args.slice(0, 3), ["-NoProfile", "-NonInteractive", "-EncodedCommand"])
        assert.strictEqual(c.args.length, 4)
        const script = decodeScript(c.args[3]!)
        assert.strictEqual(script, AzurePowerShellCredential.script)
        assert.notInclude(script, "management.azure.com")
        assert.notInclude(script, "contoso")
        assert.strictEqual(c.cwd, "/bin")
        assert.strictEqual(c.shell, false)
        assert.strictEqual(c.stdin, "")
        assert.deepStrictEqual(c.env, {
          AZURE_IDENTITY_POWERSHELL_RESOURCE: "https://management.azure.com",
          AZURE_IDENTITY_POWERSHELL_TENANT_ID: "contoso.onmicrosoft.com"
        })
        yield* credential.getToken(SCOPE)
        assert.strictEqual(commands.length, 1)
      }), { tenantId: "contoso.onmicrosoft.com" }))

  it.effect("the script: module check, AsSecureString for 2.17–4.x, SecureString converted on PowerShell 5 and 7", () =>
    Effect.sync(() => {
      const script = AzurePowerShellCredential.script
      assert.include(script, "Get-Module -ListAvailable -Name Az.Accounts")
      assert.include(script, "Write-Output 'NO_AZ_ACCOUNT_MODULE'")
      assert.include(script, "$module.Version -ge [version]'2.17.0' -and $module.Version -lt [version]'5.0.0'")
      assert.include(script, "$params['AsSecureString'] = $true")
      assert.include(script, "if ($text -is [System.Security.SecureString])")
      assert.include(script, "PtrToStringBSTR")
      assert.include(script, "ZeroFreeBSTR")
      assert.include(script, "ConvertFrom-SecureString -SecureString $text -AsPlainText")
      assert.include(script, "$params['TenantId'] = $env:AZURE_IDENTITY_POWERSHELL_TENANT_ID")
    }))

  it.effect("tenant: none (empty variable), requested and allowed, refused, invalid never reaches PowerShell", () =>
    Effect.gen(function*() {
      yield* withPwsh(() => output(answer()), (credential, commands) =>
        Effect.gen(function*() {
          yield* credential.getToken(SCOPE)
          assert.strictEqual(commands[0]!.env.AZURE_IDENTITY_POWERSHELL_TENANT_ID, "")
          yield* credential.getToken(SCOPE, { tenantId: "fabrikam.onmicrosoft.com" })
          assert.strictEqual(commands[1]!.env.AZURE_IDENTITY_POWERSHELL_TENANT_ID, "fabrikam.onmicrosoft.com")
          assert.include(
            reasonOf(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: "x'; Remove-Item ~ -Recurse; '" }))),
            "invalid tenant id"
          )
          assert.strictEqual(commands.length, 2)
        }))
      yield* withPwsh(() => output(answer()), (credential, commands) =>
        Effect.gen(function*() {
          assert.include(
            reasonOf(yield* Effect.exit(credential.getToken(SCOPE, { tenantId: "elsewhere" }))),
            "additionallyAllowedTenants"
          )
          assert.strictEqual(commands.length, 0)
        }), { tenantId: "t1" })
      yield* withPwsh(() => output(answer()), (credential, commands) =>
        Effect.gen(function*() {
          assert.include(reasonOf(yield* Effect.exit(credential.getToken(SCOPE))), "invalid tenant id")
          assert.strictEqual(commands.length, 0)
        }), { tenantId: "a$(whoami)" })
    }))

  it.effect("scopes: one at a time, validated; claims give the Connect-AzAccount command", () =>
    withPwsh(() => output(answer()), (credential, commands) =>
      Effect.gen(function*() {
        assert.match(reasonOf(yield* Effect.exit(credential.getToken("a'b"))), /invalid scope/)
        assert.include(reasonOf(yield* Effect.exit(credential.getToken([SCOPE, SCOPE]))), "one scope at a time")
        const claims = "{\"access_token\":{\"nbf\":{\"essential\":true}}}"
        assert.include(
          reasonOf(yield* Effect.exit(credential.getToken(SCOPE, { claims }))),
          `Connect-AzAccount -ClaimsChallenge ${Buffer.from(claims).toString("base64")} -Tenant t1`
        )
        assert.strictEqual(commands.length, 0)
      }), { tenantId: "t1" }))

  it.effect("failures: not installed, module missing (both forms), not signed in, policy, other, bad output", () =>
    Effect.gen(function*() {
      const cases: Array<[Reply, string]> = [
        [notFound, "(pwsh) was not found on PATH"],
        [failure(127, "sh: pwsh: not found"), "PowerShell was not found on PATH"],
        [output("NO_AZ_ACCOUNT_MODULE\n"), "Install-Module -Name Az"],
        [
          failure(
            1,
            "Import-Module: The specified module 'Az.Accounts' with version '2.2.0' was not loaded because no valid " +
              "module file was found in any module directory."
          ),
          "Az.Accounts module (2.2.0 or later) is not installed"
        ],
        [
          failure(1, "Get-AzAccessToken: Run Connect-AzAccount to login."),
          "run `Connect-AzAccount` and try again"
        ],
        [failure(1, "AuthorizationManager check failed."), "execution policy"],
        [failure(1, `Get-AzAccessToken: AADSTS700016: app not found ${TOKEN}`), "exited with code 1: Get-Az"],
        [output(`not json ${TOKEN}`), "printed no token answer"],
        [output(`{"Token": "${TOKEN}"`), "printed no token answer"],
        [output(answer({ Token: "System.Security.SecureString" })), "SecureString that was not converted"],
        [output(answer({ ExpiresOn: "tomorrow" })), "without a readable expiry"],
        [output(answer({ ExpiresOn: -5 })), "without a readable expiry"]
      ]
      for (const [reply, expected] of cases) {
        yield* withPwsh(() => reply, (credential) =>
          Effect.gen(function*() {
            assert.include(reasonOf(yield* Effect.exit(credential.getToken(SCOPE))), expected)
          }))
      }
    }))

  it.effect("ExpiresOn as an RFC 3339 text is read too", () =>
    withPwsh(() => output(answer({ ExpiresOn: "2026-11-27T10:00:00+01:00" })), (credential) =>
      Effect.gen(function*() {
        const token = yield* credential.getToken(SCOPE)
        assert.strictEqual(DateTime.formatIso(token.expiresOn), "2026-11-27T09:00:00.000Z")
      })))

  it.effect("stops a hanging PowerShell after the timeout (default 10 s)", () =>
    Effect.gen(function*() {
      yield* withPwsh(() => hang, (credential, commands) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
          yield* TestClock.adjust("9999 millis")
          assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
          yield* TestClock.adjust("1 millis")
          assert.include(reasonOf(yield* Fiber.join(fiber)), "did not answer within 10s")
          assert.isTrue(commands[0]!.killed)
        }))
      yield* withPwsh(() => hang, (credential) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.exit(credential.getToken(SCOPE)))
          yield* TestClock.adjust("2 seconds")
          assert.include(reasonOf(yield* Fiber.join(fiber)), "did not answer within 2s")
        }), { processTimeout: "2 seconds" })
    }))

  it.effect("layerConfig reads AZURE_TENANT_ID", () => {
    const mock = mockExecutor(() => output(answer()))
    return Effect.gen(function*() {
      yield* setNow
      yield* TokenCredential.getToken(SCOPE)
      assert.strictEqual(mock.commands[0]!.env.AZURE_IDENTITY_POWERSHELL_TENANT_ID, "t-from-env")
    }).pipe(
      Effect.provide(AzurePowerShellCredential.layerConfig().pipe(Layer.provide(mock.layer))),
      withEnv({ AZURE_TENANT_ID: "t-from-env" })
    )
  })
})

// -----------------------------------------------------------------------------
// a stub pwsh on the child's PATH
// -----------------------------------------------------------------------------

let root: string
const dirs: Record<string, string> = {}

/**
 * The stub decodes the `-EncodedCommand` script (UTF-16LE base64) into script.ps1, records its arguments and the two
 * input variables, then acts as the mode says. Mode `az5` models Az.Accounts 5 (the token is a SecureString): it
 * prints the token only if the script converts a SecureString to text, and the string "System.Security.SecureString"
 * otherwise (what `$result.Token` gives when printed unconverted).
 */
const stub = (dir: string, mode: string) =>
  `printf '%s' "$4" | base64 -d | tr -d '\\000' > "${dir}/script.ps1"
{ for a in "$1" "$2" "$3"; do echo "$a"; done; echo "RESOURCE=$AZURE_IDENTITY_POWERSHELL_RESOURCE"; echo "TENANT=$AZURE_IDENTITY_POWERSHELL_TENANT_ID"; pwd; } > "${dir}/call.log"
case "${mode}" in
  plain) echo 'WARNING: Upcoming breaking changes'; echo '{"Token":"${TOKEN}","ExpiresOn":${EXPIRES}}' ;;
  az5)
    if grep -q 'ConvertFrom-SecureString -SecureString $text -AsPlainText' "${dir}/script.ps1"; then
      echo '{"Token":"${TOKEN}","ExpiresOn":${EXPIRES}}'
    else
      echo '{"Token":"System.Security.SecureString","ExpiresOn":${EXPIRES}}'
    fi ;;
  nologin) echo 'Get-AzAccessToken: Run Connect-AzAccount to login.' >&2; exit 1 ;;
  nomodule) echo 'NO_AZ_ACCOUNT_MODULE' ;;
  badjson) echo '{"Token": "${TOKEN}", "ExpiresOn": ' ;;
  hang) echo $$ > "${dir}/pwsh.pid"; exec sleep 30 ;;
esac`

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-azure-identity-pwsh-"))
  for (const mode of ["plain", "az5", "nologin", "nomodule", "badjson", "hang"]) {
    const dir = path.join(root, mode)
    fs.mkdirSync(dir)
    writeStub(dir, "pwsh", stub(dir, mode))
    dirs[mode] = dir
  }
  dirs.empty = path.join(root, "empty")
  fs.mkdirSync(dirs.empty)
})

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true })
})

const real = (dir: string, options: AzurePowerShellCredential.Options = {}, pathTail = ":/usr/bin:/bin") =>
  AzurePowerShellCredential.layer({ environment: { PATH: `${dir}${pathTail}` }, ...options }).pipe(
    Layer.provide(IdentityNode.layer)
  )

const getToken = (layer: Layer.Layer<TokenCredential.TokenCredential>, tenantId?: string) =>
  getTokenExit(layer, SCOPE, tenantId)

describe("AzurePowerShellCredential with a stub pwsh", () => {
  it.live("plain token: argv, the decoded script, resource and tenant in the environment, /bin", () =>
    Effect.gen(function*() {
      assertToken(yield* getToken(real(dirs.plain!, { tenantId: "contoso.onmicrosoft.com" })), TOKEN, EXPIRES * 1000)
      const log = callLog(dirs.plain!)
      assert.deepStrictEqual(log.slice(0, 5), [
        "-NoProfile",
        "-NonInteractive",
        "-EncodedCommand",
        "RESOURCE=https://management.azure.com",
        "TENANT=contoso.onmicrosoft.com"
      ])
      assert.strictEqual(fs.realpathSync(log[5]!), fs.realpathSync("/bin"))
      assert.strictEqual(
        fs.readFileSync(path.join(dirs.plain!, "script.ps1"), "utf8"),
        AzurePowerShellCredential.script
      )
    }))

  it.live("Az.Accounts 5 SecureString token: converted by the script", () =>
    Effect.gen(function*() {
      const exit = yield* getToken(real(dirs.az5!))
      assert.isTrue(Exit.isSuccess(exit), Exit.isFailure(exit) ? String(exit.cause) : "")
      if (Exit.isSuccess(exit)) assert.strictEqual(Redacted.value(exit.value.token), TOKEN)
      assert.strictEqual(callLog(dirs.az5!)[4], "TENANT=")
    }))

  it.live("a requested tenant reaches the script through its variable", () =>
    Effect.gen(function*() {
      const exit = yield* getToken(real(dirs.plain!), "fabrikam.onmicrosoft.com")
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(callLog(dirs.plain!)[4], "TENANT=fabrikam.onmicrosoft.com")
    }))

  it.live("not installed: an empty PATH", () =>
    Effect.gen(function*() {
      assert.include(reasonOf(yield* getToken(real(dirs.empty!, {}, ""))), "(pwsh) was not found on PATH")
    }))

  it.live("not signed in, no Az module, bad JSON", () =>
    Effect.gen(function*() {
      assert.include(reasonOf(yield* getToken(real(dirs.nologin!))), "run `Connect-AzAccount`")
      assert.include(reasonOf(yield* getToken(real(dirs.nomodule!))), "Install-Module -Name Az")
      assert.include(reasonOf(yield* getToken(real(dirs.badjson!))), "printed no token answer")
    }))

  it.live("hangs past the timeout: stopped, and the process is gone", () =>
    Effect.gen(function*() {
      const exit = yield* getToken(real(dirs.hang!, { processTimeout: "300 millis" }))
      assert.include(reasonOf(exit), "did not answer within 300ms")
      assertExited(dirs.hang!, ["pwsh.pid"])
    }))
})

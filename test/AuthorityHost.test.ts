import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import { AuthorityHost } from "../src/index.js"
import { withEnv } from "./support/helpers.js"

describe("AuthorityHost", () => {
  it("normalises hosts", () => {
    assert.deepStrictEqual(
      AuthorityHost.normalize("login.microsoftonline.us/"),
      Either.right(AuthorityHost.AzureGovernment)
    )
    assert.deepStrictEqual(
      AuthorityHost.normalize(" https://login.chinacloudapi.cn// "),
      Either.right(AuthorityHost.AzureChina)
    )
    assert.deepStrictEqual(AuthorityHost.normalize("http://127.0.0.1:8080/"), Either.right("http://127.0.0.1:8080"))
    assert.deepStrictEqual(AuthorityHost.normalize("http://localhost:1"), Either.right("http://localhost:1"))
    assert.deepStrictEqual(AuthorityHost.normalize("http://[::1]:1"), Either.right("http://[::1]:1"))
    assert.isTrue(Either.isLeft(AuthorityHost.normalize("http://login.microsoftonline.com")))
    assert.isTrue(Either.isLeft(AuthorityHost.normalize("ftp://x")))
    assert.isTrue(Either.isLeft(AuthorityHost.normalize("")))
    assert.isTrue(Either.isLeft(AuthorityHost.normalize("https://user:pw@x")))
    assert.isTrue(Either.isLeft(AuthorityHost.normalize("https://x/?q=1")))
    assert.isTrue(Either.isLeft(AuthorityHost.normalize("https://exa mple")))
  })

  it("refuses a quoted authority host and says to remove the quotes", () => {
    for (
      const quoted of [
        "\"http://127.0.0.1:8080\"",
        "'https://login.microsoftonline.us'",
        "\"login.microsoftonline.us\""
      ]
    ) {
      const result = AuthorityHost.normalize(quoted, "AZURE_AUTHORITY_HOST")
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left._tag, "InvalidArgumentError")
        assert.strictEqual(result.left.argument, "AZURE_AUTHORITY_HOST")
        assert.include(result.left.message, "remove the quotes")
      }
    }
  })

  it.effect("AZURE_AUTHORITY_HOST in quotes is a typed error naming the variable", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        AuthorityHost.resolve(undefined).pipe(withEnv({ AZURE_AUTHORITY_HOST: "\"http://localhost:8080\"" }))
      )
      assert.strictEqual(error.argument, "AZURE_AUTHORITY_HOST")
      assert.include(error.message, "AZURE_AUTHORITY_HOST: ")
      assert.include(error.message, "remove the quotes")
      assert.notInclude(error.message, "https://\"")
    }))

  it("only localhost, 127.0.0.0/8 and ::1 are loopback for http: (*.localhost goes through DNS)", () => {
    for (const host of ["localhost", "LOCALHOST", "127.0.0.1", "127.255.0.9", "[::1]", "::1"]) {
      assert.isTrue(AuthorityHost.isLoopbackHost(host), host)
    }
    for (const host of ["evil.localhost", "a.b.localhost", "127.0.0.1.nip.io", "127.256.0.1", "localhost.", "[::2]"]) {
      assert.isFalse(AuthorityHost.isLoopbackHost(host), host)
    }
    assert.isTrue(Either.isLeft(AuthorityHost.normalize("http://evil.localhost:8080")))
    assert.isTrue(Either.isRight(AuthorityHost.normalize("https://evil.localhost:8080")))
  })

  it("tenant ids and scopes must not start with '-'", () => {
    for (const tenant of ["--debug", "-x", ".x", "-"]) {
      const result = AuthorityHost.validateTenantId(tenant)
      assert.isTrue(Either.isLeft(result), tenant)
      if (Either.isLeft(result)) assert.strictEqual(result.left.argument, "tenantId")
    }
    for (const scope of ["--debug", "-x"]) {
      assert.isTrue(Either.isLeft(AuthorityHost.validateScopes([scope])), scope)
      assert.isTrue(Either.isLeft(AuthorityHost.validateDevToolScope(scope)), scope)
    }
    assert.isTrue(Either.isLeft(AuthorityHost.validateScopes(["a'b"])))
    assert.isTrue(Either.isRight(AuthorityHost.validateScopes(["api://x-y/.default", "offline_access"])))
  })

  it.effect("resolves option, then AZURE_AUTHORITY_HOST, then the public cloud", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* AuthorityHost.resolve(undefined).pipe(withEnv({})), AuthorityHost.AzurePublicCloud)
      assert.strictEqual(
        yield* AuthorityHost.resolve(undefined).pipe(withEnv({ AZURE_AUTHORITY_HOST: "login.microsoftonline.us" })),
        AuthorityHost.AzureGovernment
      )
      assert.strictEqual(
        yield* AuthorityHost.resolve("https://login.chinacloudapi.cn").pipe(withEnv({ AZURE_AUTHORITY_HOST: "x" })),
        AuthorityHost.AzureChina
      )
      const error = yield* Effect.flip(AuthorityHost.resolve("http://evil.example"))
      assert.strictEqual(error._tag, "InvalidArgumentError")
      assert.strictEqual(error.argument, "authorityHost")
      assert.include(error.message, "loopback")
    }))

  it("validates tenant ids", () => {
    for (const ok of ["organizations", "contoso.onmicrosoft.com", "72f988bf-86f1-41af-91ab-2d7cd011db47"]) {
      assert.isTrue(Either.isRight(AuthorityHost.validateTenantId(ok)))
    }
    // "." and ".." would be path segments: {authority}/../oauth2/v2.0/token leaves the tenant's endpoint
    for (const bad of ["", "a/b", "a b", "x?y", "../x", "t\n", ".", "..", "..."]) {
      assert.isTrue(Either.isLeft(AuthorityHost.validateTenantId(bad)))
    }
  })

  it("scope to resource strips only a trailing /.default", () => {
    assert.strictEqual(AuthorityHost.scopeToResource("https://vault.azure.net/.default"), "https://vault.azure.net")
    assert.strictEqual(
      AuthorityHost.scopeToResource("https://management.azure.com//.default"),
      "https://management.azure.com/"
    )
    assert.strictEqual(AuthorityHost.scopeToResource("https://x/.defaultx"), "https://x/.defaultx")
    assert.strictEqual(AuthorityHost.scopeToResource("api://a/.default/.default"), "api://a/.default")
  })

  it("dev-tool scopes allow only safe characters", () => {
    assert.isTrue(Either.isRight(AuthorityHost.validateDevToolScope("https://management.azure.com//.default")))
    for (const bad of ["a b", "a;rm -rf", "$(x)", "a\"b", "`x`", "a|b"]) {
      assert.isTrue(Either.isLeft(AuthorityHost.validateDevToolScope(bad)))
    }
  })

  it("resolveTenant", () => {
    const r = (configured: string | undefined, requested: string | undefined, allowed: Array<string> = []) =>
      AuthorityHost.resolveTenant({ configured, requested, additionallyAllowedTenants: allowed })
    assert.deepStrictEqual(r("a", undefined), Either.right("a"))
    assert.deepStrictEqual(r("a", "a"), Either.right("a"))
    assert.isTrue(Either.isLeft(r("a", "b")))
    assert.deepStrictEqual(r("a", "B", ["b"]), Either.right("B"))
    assert.deepStrictEqual(r("a", "b", ["*"]), Either.right("b"))
    assert.deepStrictEqual(r(undefined, "b"), Either.right("b"))
    assert.deepStrictEqual(r("adfs", "b"), Either.right("adfs"))
    assert.isTrue(Either.isLeft(r(undefined, undefined)))
    assert.isTrue(Either.isLeft(r("a", "bad/tenant", ["*"])))
  })

  it.effect("AZURE_ADDITIONALLY_ALLOWED_TENANTS is split on ;", () =>
    Effect.gen(function*() {
      const list = yield* AuthorityHost.additionallyAllowedTenantsFromConfig.pipe(
        withEnv({ AZURE_ADDITIONALLY_ALLOWED_TENANTS: " a ; ;b;" })
      )
      assert.deepStrictEqual(list, ["a", "b"])
    }))

  it.effect.prop(
    "tenant validation never throws and accepts exactly [A-Za-z0-9.-]+ starting with a letter or digit",
    [FastCheck.oneof(FastCheck.string(), FastCheck.stringMatching(/^[.a-z-]{1,4}$/))],
    ([s]) =>
      Effect.sync(() => {
        const result = AuthorityHost.validateTenantId(s)
        assert.strictEqual(Either.isRight(result), /^[A-Za-z0-9.-]+$/.test(s) && !/^[.-]/.test(s))
      })
  )

  it.effect.prop("scope validation never throws; accepted scopes have no whitespace", [
    FastCheck.array(FastCheck.string(), { maxLength: 4 })
  ], ([scopes]) =>
    Effect.sync(() => {
      const result = AuthorityHost.validateScopes(scopes)
      if (Either.isRight(result)) {
        assert.isTrue(result.right.length > 0)
        for (const s of result.right) assert.isFalse(/\s/.test(s) || s.startsWith("-"))
      }
    }))

  it.effect.prop(
    "normalize never throws and only returns https or loopback http",
    [FastCheck.webUrl()],
    ([u]) =>
      Effect.sync(() => {
        const result = AuthorityHost.normalize(u)
        if (Either.isRight(result)) {
          const url = new URL(result.right)
          assert.isTrue(url.protocol === "https:" || AuthorityHost.isLoopbackHost(url.hostname))
        }
      })
  )
})

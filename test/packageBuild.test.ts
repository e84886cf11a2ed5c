import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync, rmSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))

/**
 * The published `dist/` is an esbuild bundle of tsc's output (scripts/build.mjs): one module per entry point and
 * shared chunks. These checks run on a real build, in a child process that imports it as an app would.
 */
describe("the published build (scripts/build.mjs)", () => {
  it("keeps one instance of every tag and class across entry points, and loads optional peers only on demand", {
    timeout: 180_000
  }, () => {
    const out = path.join(root, "tmp", `test-build-${process.pid}`)
    try {
      execFileSync(process.execPath, [path.join(root, "scripts", "build.mjs"), out, "--no-declarations"], {
        stdio: "pipe"
      })
      const files = readdirSync(out)
      // every top-level source module is an entry point of its own (the `./*` export)
      const sources = readdirSync(path.join(root, "src")).filter((f) => f.endsWith(".ts")).map((f) =>
        f.replace(/\.ts$/, ".js")
      )
      for (const source of sources) assert.include(files, source)
      // shared code lives under internal/ only (`"./internal/*": null`)
      assert.deepStrictEqual(files.filter((f) => f.endsWith(".js") && !sources.includes(f)), [])
      const entry = (name: string) => JSON.stringify(pathToFileURL(path.join(out, name)).href)
      const script = `
        ${lazilyLoadedProbe}
        const index = await import(${entry("index.js")})
        const TokenCache = await import(${entry("TokenCache.js")})
        const IdentityError = await import(${entry("IdentityError.js")})
        const Secret = await import(${entry("ClientSecretCredential.js")})
        const TokenCredential = await import(${entry("TokenCredential.js")})
        const node = await import(${entry("node.js")})
        console.log(JSON.stringify({
          tokenCacheTag: index.TokenCache.TokenCache === TokenCache.TokenCache,
          credentialTag: index.TokenCredential.TokenCredential === TokenCredential.TokenCredential,
          errorClass: index.IdentityError.ClientAuthenticationError === IdentityError.ClientAuthenticationError,
          layer: index.ClientSecretCredential.layer === Secret.layer,
          nodeLayer: typeof node.layer,
          rootKeys: Object.keys(index).sort(),
          lazy: await lazilyLoaded(index, node)
        }))
      `
      const result = JSON.parse(
        execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root, encoding: "utf8" })
      )
      assert.isTrue(result.tokenCacheTag)
      assert.isTrue(result.credentialTag)
      assert.isTrue(result.errorClass)
      assert.isTrue(result.layer)
      assert.strictEqual(result.nodeLayer, "object")
      // the root exports the namespaces of src/index.ts, nothing more
      const declared = [...readFileSync(path.join(root, "src", "index.ts"), "utf8").matchAll(/export \* as (\w+)/g)]
        .map((m) => m[1]!).sort()
      assert.deepStrictEqual(result.rootKeys, declared)
      // the package root never loads @effect/platform-node or ioredis (optional peers)
      const reachable = [...reachableFromIndex(out)]
      // index.js and the one shared chunk with the code: no other file (the walk itself found the imports; more files
      // would mean esbuild split the shared code by the entries and dynamic imports that reach it)
      assert.strictEqual(reachable.length, 2, reachable.join(", "))
      const rootImports = reachable.map((f) => readFileSync(path.join(out, f), "utf8")).join("\n")
      assert.notInclude(rootImports, "@effect/platform-node")
      assert.notInclude(rootImports, "ioredis")
      assert.match(readFileSync(path.join(out, "RedisTokenCache.js"), "utf8"), /from "ioredis"/)
      // nor does any shared or lazily loaded chunk: only the entry modules node.js and RedisTokenCache.js do
      for (const chunk of readdirSync(path.join(out, "internal"))) {
        const text = readFileSync(path.join(out, "internal", chunk), "utf8")
        assert.notInclude(text, "@effect/platform-node", chunk)
        assert.notInclude(text, "ioredis", chunk)
      }

      // the code loaded with `lazyModule(() => import(...))` is not in what the root loads: each such module is in a
      // chunk of its own, which the root's files reach only through `import()`
      const lazyModules = lazilyImportedModules()
      assert.isAtLeast(lazyModules.length, 5)
      for (const module of lazyModules) {
        const marker = `// src/${module}`
        assert.notInclude(rootImports, marker)
        const chunks = readdirSync(path.join(out, "internal")).filter((f) =>
          readFileSync(path.join(out, "internal", f), "utf8").includes(marker)
        )
        assert.strictEqual(chunks.length, 1, `${module} is in exactly one chunk`)
        assert.notInclude(reachable, `internal/${chunks[0]}`)
      }
      // and it works from the built package: each credential below loads its chunk when it is built and fails with the
      // root's own error class (one instance of every class and tag, the lazily loaded chunks included)
      assert.deepStrictEqual(result.lazy, {
        ManagedIdentityCredential: "CredentialUnavailableError, the root's class",
        SharedTokenCacheCredential: "CredentialUnavailableError, the root's class",
        DeviceCodeCredential: "CredentialUnavailableError, the root's class",
        AzureCliCredential: "CredentialUnavailableError, the root's class"
      })
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })
})

/** The modules of src that are loaded with `lazyModule(() => import("./x.js"))`, as paths relative to src. */
const lazilyImportedModules = (): Array<string> => {
  const src = path.join(root, "src")
  const found: Array<string> = []
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name)
      if (entry.isDirectory()) visit(file)
      else if (entry.name.endsWith(".ts")) {
        for (const m of readFileSync(file, "utf8").matchAll(/lazyModule\(\(\) => import\("(\.[^"]+)"\)\)/g)) {
          found.push(path.relative(src, path.resolve(dir, m[1]!)).split(path.sep).join("/"))
        }
      }
    }
  }
  visit(src)
  return found
}

/**
 * Runs in the child process (before the imports of the script): builds credentials whose code is loaded with
 * `import()`, with options or an environment that make them unavailable without any network or child process, and
 * describes the error each `getToken` fails with.
 */
const lazilyLoadedProbe = `
  const lazilyLoaded = async (index, node) => {
    const { Effect, Layer } = await import("effect")
    const missing = ${JSON.stringify(path.join(root, "tmp", "no-such-dir", "msal.cache"))}
    const layers = {
      ManagedIdentityCredential: index.ManagedIdentityCredential.layer({ clientId: "a", objectId: "b" }),
      SharedTokenCacheCredential: index.SharedTokenCacheCredential.layer({ cachePath: missing }),
      DeviceCodeCredential: index.DeviceCodeCredential.layer({ tenantId: "not a tenant!" }),
      AzureCliCredential: index.AzureCliCredential.layer({ subscription: "-not-a-subscription" })
    }
    const out = {}
    for (const [name, layer] of Object.entries(layers)) {
      const error = await Effect.runPromise(
        Effect.flip(index.TokenCredential.getToken("https://vault.azure.net/.default")).pipe(
          Effect.provide(Layer.provide(layer, node.layer))
        )
      )
      out[name] = error._tag + (error instanceof index.IdentityError.CredentialUnavailableError ? ", the root's class" : "")
    }
    return out
  }
`

/** The files `index.js` imports statically, transitively (relative imports only). */
const reachableFromIndex = (out: string): Set<string> => {
  const seen = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    const text = readFileSync(path.join(out, file), "utf8")
    for (
      const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s*"(\.[^"]+)"|(?:^|\n)import\s*"(\.[^"]+)"/g)
    ) {
      visit(path.posix.join(path.posix.dirname(file), (m[1] ?? m[2])!))
    }
  }
  visit("index.js")
  return seen
}

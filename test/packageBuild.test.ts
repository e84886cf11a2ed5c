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
          rootKeys: Object.keys(index).sort()
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
      // index.js and the chunk with the code (at least): the walk itself found the imports
      assert.isAtLeast(reachable.length, 2)
      const rootImports = reachable.map((f) => readFileSync(path.join(out, f), "utf8")).join("\n")
      assert.notInclude(rootImports, "@effect/platform-node")
      assert.notInclude(rootImports, "ioredis")
      assert.match(readFileSync(path.join(out, "RedisTokenCache.js"), "utf8"), /from "ioredis"/)
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })
})

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

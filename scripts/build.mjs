/**
 * Builds the published `dist/` (`npm run build`, `prepack`): `tsc` compiles `src/` (declarations and JavaScript) into
 * a staging directory, the declarations are copied to `dist/` as they are, and esbuild bundles the JavaScript into
 * one module per public entry point plus one shared chunk.
 *
 * Why: Node's module loader costs about 1 ms of CPU per module (resolve, read, parse, link). `tsc` alone publishes
 * ~65 modules that `import "effect-azure-identity"` all loads: about 85 ms of CPU over an app that already loads
 * effect, against about 40 ms for the same code in one file (docs/performance.md, "Import cost").
 *
 * How every `Context` tag, error class and schema stays a single instance across entry points (`.` and `./*`): each
 * entry point is a generated module that re-exports its source module and also imports `index.js`. Every module the
 * package root reaches is then reachable from every entry point, and esbuild's code splitting puts all of them in
 * one chunk (`dist/internal/lib-<hash>.js`, which `"./internal/*": null` keeps out of the public surface). What the
 * root does not reach (`node.js` with `@effect/platform-node`, `RedisTokenCache.js` with `ioredis`) stays in its own
 * entry module and is loaded only by those who import it. Packages (`effect`, `@effect/*`, `jose`, `ioredis`) stay
 * external imports.
 *
 * Code a credential needs only once it is built (the managed identity hosts, the MSAL cache file, the user token
 * flows, the browser flow, the developer tools' process runner) is loaded with `import()` (`lazyModule`,
 * src/internal/lazy.ts): esbuild puts each such module in a chunk of its own (`dist/internal/lib-<hash>.js` too), which
 * the root does not load. Each `import()` target is generated like an entry point (it also imports `index.js`), so the
 * shared chunk stays one file; `test/packageBuild.test.ts` checks both.
 *
 * `node scripts/build.mjs [outDir] [--no-declarations]` (default `dist`; the import-cost bench builds into
 * `tmp/bench-dist`).
 */
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const args = process.argv.slice(2)
const outDir = path.resolve(root, args.find((a) => !a.startsWith("--")) ?? "dist")
const declarations = !args.includes("--no-declarations")
// named `src` so that the bundle's comments name the source modules (`// src/AccessToken.js`)
const work = path.join(root, "tmp", `build-${process.pid}`)
const staging = path.join(work, "src")

rmSync(outDir, { recursive: true, force: true })
rmSync(work, { recursive: true, force: true })
try {
  execFileSync(process.execPath, [
    path.join(root, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    path.join(root, "tsconfig.build.json"),
    "--outDir",
    staging,
    ...(declarations ? [] : ["--declaration", "false"])
  ], { stdio: "inherit" })

  mkdirSync(outDir, { recursive: true })
  if (declarations) {
    cpSync(staging, outDir, {
      recursive: true,
      filter: (source) => !source.endsWith(".js")
    })
  }

  // The public entry points: every top-level module of src (the package's `.` and `./*` exports)
  const entries = readdirSync(staging).filter((f) => f.endsWith(".js")).map((f) => f.slice(0, -3))
  const index = path.join(staging, "index.js")
  if (!existsSync(index)) throw new Error("build: tsc emitted no index.js")

  await build({
    entryPoints: Object.fromEntries(entries.map((name) => [name, `entry:${name}`])),
    absWorkingDir: work,
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    chunkNames: "internal/lib-[hash]",
    legalComments: "none",
    logLevel: "warning",
    plugins: [{
      name: "entries",
      setup(b) {
        b.onResolve({ filter: /^entry:/ }, (a) => ({ path: a.path.slice("entry:".length), namespace: "entry" }))
        b.onLoad({ filter: /.*/, namespace: "entry" }, (a) => ({
          contents: a.path === "index"
            ? `export * from ${JSON.stringify(index)}\n`
            : `export * from ${JSON.stringify(path.join(staging, `${a.path}.js`))}\n` +
              `import ${JSON.stringify(index)}\n`,
          resolveDir: staging
        }))
        // `import()` of a module of src (`AzureSdk` loads `./node.js`; credentials load their implementation with
        // `lazyModule`, src/internal/lazy.ts): the target is generated like an entry point ("re-export it, and
        // import index.js"), so that every module the root reaches stays in the one shared chunk and the lazily
        // loaded chunk holds only what nothing else imports. Without it, esbuild would split the shared chunk by
        // which dynamic imports reach each module (more files for the root to load).
        b.onResolve({ filter: /^\./ }, (a) => {
          if (a.kind !== "dynamic-import") return undefined
          const target = path.resolve(a.resolveDir, a.path)
          const entry = path.relative(staging, target).replace(/\.js$/, "")
          if (entries.includes(entry)) return { path: entry, namespace: "entry" }
          return { path: target, namespace: "lazy" }
        })
        b.onLoad({ filter: /.*/, namespace: "lazy" }, (a) => ({
          contents: `export * from ${JSON.stringify(a.path)}\nimport ${JSON.stringify(index)}\n`,
          resolveDir: staging
        }))
        // the package says `"sideEffects": false`: the bare `import` above must still count
        b.onResolve(
          { filter: /index\.js$/ },
          (a) => a.namespace === "entry" || a.namespace === "lazy" ? { path: index, sideEffects: true } : undefined
        )
      }
    }]
  })
} finally {
  rmSync(work, { recursive: true, force: true })
}

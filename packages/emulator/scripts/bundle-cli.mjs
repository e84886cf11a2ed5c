/**
 * Bundles the command line (`dist/bin.js`, built by `tsc` before this runs) into `dist/cli/`: one entry module and
 * one chunk per lazily loaded command module. Node then loads a few files instead of the ~700 modules of effect,
 * @effect/cli, fast-check and the library, which is most of the start-up time (see docs/performance.md,
 * "CLI start-up"). The library's modules (`IdentityEmulator` and the rest of `dist/`) stay unbundled.
 */
import { build } from "esbuild"
import { rmSync } from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
// esbuild never deletes: chunks of an earlier build (other hashes) would stay and be packed
rmSync(path.join(root, "dist/cli"), { recursive: true, force: true })

await build({
  entryPoints: { bin: path.join(root, "dist/bin.js") },
  outdir: path.join(root, "dist/cli"),
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // CommonJS dependencies (undici) call require() for Node's own modules, which an ES module lacks
  banner: {
    js:
      "import { createRequire as __createRequire } from \"node:module\"\nconst require = __createRequire(import.meta.url)"
  },
  logLevel: "warning"
})

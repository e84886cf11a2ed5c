/**
 * The emulator package is native to @effect/platform: no module of its src/ imports Node's http, https, fs or
 * child_process, except the Node platform module that creates the server.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const src = path.resolve(import.meta.dirname, "../src")
const platformModules = new Set(["internal/emulator/nodeServer.ts"])
const forbidden =
  /from\s+"node:(?:http|https|fs|fs\/promises|child_process)"|import\(\s*"node:(?:http|https|fs|child_process)/

const modules = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? modules(path.join(dir, entry.name))
      : entry.name.endsWith(".ts")
      ? [path.join(dir, entry.name)]
      : []
  )

describe("emulator package", () => {
  it("imports node:http, node:https, node:fs and node:child_process only in its Node platform module", () => {
    const files = modules(src).map((file) => path.relative(src, file).split(path.sep).join("/"))
    assert.include(files, "internal/emulator/nodeServer.ts")
    const offenders = files.filter((file) =>
      !platformModules.has(file) && forbidden.test(fs.readFileSync(path.join(src, file), "utf8"))
    )
    assert.deepStrictEqual(offenders, [])
    // the rule is not vacuous: the platform module is the one that does import them
    assert.isTrue(forbidden.test(fs.readFileSync(path.join(src, "internal/emulator/nodeServer.ts"), "utf8")))
  })
})

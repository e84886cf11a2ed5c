import { assert, describe, it } from "@effect/vitest"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("../", import.meta.url))

/** Emits the declarations of `src` in memory, as `npm run build` would: file name (relative to `src`) → text. */
const emitDeclarations = (): Map<string, string> => {
  const configPath = path.join(root, "tsconfig.build.json")
  const read = ts.readConfigFile(configPath, ts.sys.readFile)
  if (read.error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"))
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configPath)
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: false,
    declaration: true,
    emitDeclarationOnly: true,
    declarationMap: false,
    sourceMap: false
  }
  const program = ts.createProgram({ rootNames: parsed.fileNames, options })
  const outputs = new Map<string, string>()
  const outDir = options.outDir ?? path.join(root, "dist")
  const result = program.emit(undefined, (fileName, text) => {
    outputs.set(path.relative(outDir, fileName).split(path.sep).join("/"), text)
  })
  const errors = result.diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error)
  if (errors.length > 0) {
    throw new Error(ts.formatDiagnostics(errors, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => root,
      getNewLine: () => "\n"
    }))
  }
  return outputs
}

describe("public declarations", () => {
  it("no public .d.ts names a module under internal/", { timeout: 120_000 }, () => {
    const outputs = emitDeclarations()
    const publicFiles = [...outputs.keys()].filter((name) => name.endsWith(".d.ts") && !name.startsWith("internal/"))
    // the emit really covered the public modules (an empty emit must not pass)
    for (const expected of ["index.d.ts", "TokenCache.d.ts", "AzureSdk.d.ts", "AzureCliCredential.d.ts"]) {
      assert.include(publicFiles, expected)
    }
    const offenders = publicFiles.flatMap((name) =>
      outputs.get(name)!.split("\n").flatMap((line, i) =>
        line.includes("internal/") ? [`${name}:${i + 1}: ${line}`] : []
      )
    )
    assert.deepStrictEqual(offenders, [])
  })
})

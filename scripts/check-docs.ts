/**
 * Compiles every TypeScript sample a user can copy: the ```ts blocks of README.md, docs/ and the packages' READMEs,
 * and the `@example` blocks of the doc comments in both packages' src/ (which are also those of the generated API
 * reference, docs/api/, skipped here). Each sample is written as a module of its
 * own under tmp/docs-check/ and the whole set is type-checked in one TypeScript program against the packages'
 * sources (the same `paths` as the project), so a sample passes only if it compiles as it stands, imports included.
 *
 * A block that is deliberately a fragment is preceded by `<!-- ts-docs-verifier:ignore -->` (the marker of
 * typescript-docs-verifier); the script counts them and fails when there are more than `maxFragments`, so they stay
 * few. Exit code 1 when a sample does not compile or there are too many fragments.
 *
 * Usage: `tsx scripts/check-docs.ts` (part of `npm test`).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

const root = path.resolve(import.meta.dirname, "..")
const outDir = path.join(root, "tmp", "docs-check")
const ignoreMarker = /<!--\s*ts-docs-verifier:ignore\s*-->\s*$/
/** Fragments are for what a complete program would make absurd (a one-line option shape); everything else compiles. */
const maxFragments = 5

interface Sample {
  readonly source: string
  readonly line: number
  readonly code: string
}

const walk = (dir: string, accept: (file: string) => boolean): Array<string> => {
  if (!fs.existsSync(dir)) return []
  const out: Array<string> = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "dist") continue
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...walk(full, accept))
    else if (accept(full)) out.push(full)
  }
  return out.sort()
}

const packageDirs = walk(path.join(root, "packages"), (f) => f.endsWith(`${path.sep}package.json`))
  .map((f) => path.dirname(f))
  .filter((d) => path.dirname(d) === path.join(root, "packages"))

// docs/api is generated from the doc comments (scripts/api-docs.ts): its examples are compiled here from the sources
// themselves, and its signature blocks are declarations, not samples
const apiDir = path.join(root, "docs", "api")

const markdownFiles = [
  path.join(root, "README.md"),
  ...walk(path.join(root, "docs"), (f) => f.endsWith(".md") && !f.startsWith(`${apiDir}${path.sep}`)),
  ...packageDirs.map((d) => path.join(d, "README.md")).filter((f) => fs.existsSync(f))
]

const sourceFiles = [root, ...packageDirs].flatMap((d) => walk(path.join(d, "src"), (f) => f.endsWith(".ts")))

const fragments: Array<string> = []

const fromMarkdown = (file: string): Array<Sample> => {
  const lines = fs.readFileSync(file, "utf8").split("\n")
  const samples: Array<Sample> = []
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)```(ts|typescript)\s*$/.exec(lines[i]!)
    if (fence === null) continue
    let end = i + 1
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++
    let before = i - 1
    while (before >= 0 && lines[before]!.trim() === "") before--
    if (before >= 0 && ignoreMarker.test(lines[before]!)) fragments.push(`${path.relative(root, file)}:${i + 1}`)
    else samples.push({ source: file, line: i + 2, code: lines.slice(i + 1, end).join("\n") })
    i = end
  }
  return samples
}

const fromDocComments = (file: string): Array<Sample> => {
  const lines = fs.readFileSync(file, "utf8").split("\n")
  const samples: Array<Sample> = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\*\s*@example\b/.test(lines[i]!)) continue
    let start = i + 1
    while (start < lines.length && /^\s*\*\s*$/.test(lines[start]!)) start++
    if (start >= lines.length || !/^\s*\*\s*```(ts|typescript)?\s*$/.test(lines[start]!)) continue
    let end = start + 1
    while (end < lines.length && !/^\s*\*\s*```\s*$/.test(lines[end]!) && !/\*\//.test(lines[end]!)) end++
    const code = lines.slice(start + 1, end).map((l) => l.replace(/^\s*\* ?/, "")).join("\n")
    samples.push({ source: file, line: start + 2, code })
    i = end
  }
  return samples
}

const samples = [...markdownFiles.flatMap(fromMarkdown), ...sourceFiles.flatMap(fromDocComments)]

fs.rmSync(outDir, { recursive: true, force: true })
fs.mkdirSync(outDir, { recursive: true })
const origin = new Map<string, Sample>()
samples.forEach((sample, n) => {
  const slug = path.relative(root, sample.source).replace(/[^A-Za-z0-9]+/g, "_")
  const file = path.join(outDir, `${String(n).padStart(3, "0")}_${slug}_${sample.line}.ts`)
  // `export {}` makes every sample a module of its own, so samples never see each other's declarations
  fs.writeFileSync(file, `${sample.code}\n\nexport {}\n`)
  origin.set(path.normalize(file), sample)
})

const configFile = ts.readConfigFile(path.join(root, "tsconfig.json"), ts.sys.readFile)
const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root)
const program = ts.createProgram([...origin.keys()], {
  ...parsed.options,
  noEmit: true,
  // a sample may declare something it does not use (an options object shown for reference)
  noUnusedLocals: false,
  noUnusedParameters: false
})

const problems: Array<string> = []
for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")
  const file = diagnostic.file
  const sample = file === undefined ? undefined : origin.get(path.normalize(file.fileName))
  if (file === undefined || sample === undefined || diagnostic.start === undefined) {
    problems.push(`${file?.fileName ?? "(no file)"}: ${message}`)
    continue
  }
  const { line, character } = file.getLineAndCharacterOfPosition(diagnostic.start)
  problems.push(`${path.relative(root, sample.source)}:${sample.line + line}:${character + 1}: ${message}`)
}

if (fragments.length > maxFragments) {
  problems.push(
    `${fragments.length} blocks are marked as fragments (at most ${maxFragments}): make some of them complete samples ` +
      `(imports, \`declare const\` for what the reader supplies):\n  ${fragments.join("\n  ")}`
  )
}

const where =
  `${samples.length} samples (${markdownFiles.length} Markdown files, doc comments of ${sourceFiles.length} sources)`
const marked = `${fragments.length} marked as fragments (at most ${maxFragments})`
if (problems.length > 0) {
  console.error(problems.join("\n"))
  console.error(`docs: ${problems.length} problems in ${where}; ${marked}`)
  process.exit(1)
}
console.log(`docs: ${where} compile; ${marked}`)

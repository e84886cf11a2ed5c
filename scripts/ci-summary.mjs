// Prints vitest's JSON report as the plain line "N passed, N failed" (CI counts tests from it).
import { existsSync, readFileSync } from "node:fs"

const [file, status] = process.argv.slice(2)
if (!existsSync(file)) {
  // typecheck or lint failed before any test ran
  console.log(`0 passed, ${status === "0" ? 0 : 1} failed`)
} else {
  const report = JSON.parse(readFileSync(file, "utf8"))
  console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed`)
}

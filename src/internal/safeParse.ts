/**
 * Describing a Schema parse error without formatting the value that failed: `ParseResult.ArrayFormatter` and
 * `TreeFormatter` render the actual value into each message, recursively, so a deeply nested value (3,000 `[` in a
 * 6 KB file) overflows the stack with a `RangeError` that escapes as a defect. This walks the issue tree with an
 * explicit stack, keeps only paths and kinds, and is bounded in the issues it visits and the text it returns.
 */
import type * as ParseResult from "effect/ParseResult"

/** Issues visited at most; a larger tree is described by what was seen. @internal */
export const maxIssues = 1_000

/** Fields named at most in a description. @internal */
export const maxFields = 10

const maxPathLength = 120

const describePath = (path: ReadonlyArray<PropertyKey>): string => {
  if (path.length === 0) return "the body"
  const text = path.map((key) => String(key)).join(".")
  return text.length > maxPathLength ? `${text.slice(0, maxPathLength)}…` : text
}

/** The fields a parse error is about: missing ones, and the ones of the wrong type or value. @internal */
export const issueFields = (
  issue: ParseResult.ParseIssue
): { readonly missing: ReadonlyArray<string>; readonly wrong: ReadonlyArray<string> } => {
  const missing = new Set<string>()
  const wrong = new Set<string>()
  const stack: Array<{ readonly issue: ParseResult.ParseIssue; readonly path: ReadonlyArray<PropertyKey> }> = [
    { issue, path: [] }
  ]
  let visited = 0
  while (stack.length > 0 && visited < maxIssues) {
    visited++
    const { issue: current, path } = stack.pop()!
    switch (current._tag) {
      case "Pointer": {
        const segment = Array.isArray(current.path) ? current.path : [current.path as PropertyKey]
        stack.push({ issue: current.issue, path: [...path, ...segment] })
        break
      }
      case "Composite": {
        const issues = Array.isArray(current.issues) ? current.issues : [current.issues as ParseResult.ParseIssue]
        for (let i = issues.length - 1; i >= 0; i--) stack.push({ issue: issues[i]!, path })
        break
      }
      case "Refinement":
      case "Transformation":
        stack.push({ issue: current.issue, path })
        break
      case "Missing":
        missing.add(describePath(path))
        break
      default:
        wrong.add(describePath(path))
    }
  }
  return {
    missing: [...missing].slice(0, maxFields),
    wrong: [...wrong].filter((field) => !missing.has(field)).slice(0, maxFields)
  }
}

/**
 * `missing a, b; wrong type or value for c`: never the value itself, never a defect, whatever the depth.
 *
 * @internal
 */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const { missing, wrong } = issueFields(error.issue)
  const parts: Array<string> = []
  if (missing.length > 0) parts.push(`missing ${missing.join(", ")}`)
  if (wrong.length > 0) parts.push(`wrong type or value for ${wrong.join(", ")}`)
  return parts.length === 0 ? "wrong type or value" : parts.join("; ")
}

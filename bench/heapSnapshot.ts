/**
 * Heap-snapshot diffs (bench/heapDiff.ts, and the bench's heap row): the objects present in the second snapshot and
 * not in the first, minus those gone from the first (V8 keeps object ids stable within a process), grouped by type and
 * name, with their count and shallow size.
 */
import { readFileSync } from "node:fs"

interface Snapshot {
  readonly snapshot: {
    readonly meta: { readonly node_fields: ReadonlyArray<string>; readonly node_types: ReadonlyArray<unknown> }
  }
  readonly nodes: ReadonlyArray<number>
  readonly strings: ReadonlyArray<string>
}

const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as Snapshot

const walk = (s: Snapshot, each: (type: string, name: string, id: number, size: number) => void) => {
  const fields = s.snapshot.meta.node_fields
  const types = s.snapshot.meta.node_types[0] as ReadonlyArray<string>
  const width = fields.length
  const [typeAt, nameAt, idAt, sizeAt] = ["type", "name", "id", "self_size"].map((f) => fields.indexOf(f))
  for (let i = 0; i < s.nodes.length; i += width) {
    each(types[s.nodes[i + typeAt!]!]!, s.strings[s.nodes[i + nameAt!]!]!, s.nodes[i + idAt!]!, s.nodes[i + sizeAt!]!)
  }
}

const labelOf = (type: string, name: string, size: number) =>
  type === "string" || type === "concatenated string" || type === "sliced string"
    ? `${type} (${size > 1000 ? "> 1000 bytes" : "≤ 1000 bytes"})`
    : `${type} ${type !== "code" ? name.slice(0, 60) : ""}`

/** One group of a diff: objects of one type and name. */
export interface Group {
  readonly label: string
  /** `code`: what the JIT made (code, its metadata, feedback), a one-off per process rather than per object kept. */
  readonly code: boolean
  count: number
  size: number
}

/** What `after` holds that `before` did not, by group, biggest first. */
export const diff = (beforeFile: string, afterFile: string): Array<Group> => {
  const before = new Map<number, readonly [string, string, number]>()
  walk(read(beforeFile), (type, name, id, size) => before.set(id, [type, labelOf(type, name, size), size]))
  const groups = new Map<string, Group>()
  const add = (type: string, label: string, count: number, size: number) => {
    const g = groups.get(label) ?? { label, code: type === "code", count: 0, size: 0 }
    g.count += count
    g.size += size
    groups.set(label, g)
  }
  walk(read(afterFile), (type, name, id, size) => {
    if (before.delete(id)) return
    add(type, labelOf(type, name, size), 1, size)
  })
  for (const [type, label, size] of before.values()) add(type, label, -1, -size)
  return [...groups.values()].sort((a, b) => Math.abs(b.size) - Math.abs(a.size))
}

/** The bytes of a diff's objects, without what the JIT made. */
export const objectBytes = (groups: ReadonlyArray<Group>): number =>
  groups.reduce((sum, g) => g.code ? sum : sum + g.size, 0)

/**
 * The failure of a command that has already told the user what went wrong.
 *
 * @internal
 */
import * as Data from "effect/Data"

/** A failure already reported to the user: exit non-zero without printing anything more. @internal */
export class Reported extends Data.TaggedError("Reported")<{ readonly exitCode: number }> {}

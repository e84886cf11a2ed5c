/**
 * A `--import` hook that appends the URL of every module Node loads (one per line) to the file named by
 * `RECORD_MODULES_FILE`. The CLI tests use it to check what a command loads.
 */
import { register } from "node:module"

const file = process.env.RECORD_MODULES_FILE
if (file !== undefined && file !== "") {
  register("./recordModulesHooks.mjs", { parentURL: import.meta.url, data: { file } })
}

/** The loader hooks of `recordModules.mjs`: each loaded module's URL is appended to the file given at `initialize`. */
import { appendFileSync } from "node:fs"

let file

export const initialize = (data) => {
  file = data.file
}

export const load = async (url, context, nextLoad) => {
  appendFileSync(file, `${url}\n`)
  return nextLoad(url, context)
}

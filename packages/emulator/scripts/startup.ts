/**
 * CLI start-up from fresh processes (see `startupMeasure.ts`): prints the medians of `N` fresh processes for each
 * command of the built command line, and of the unbundled `dist/bin.js` beside it. Run `npm run build` at the root
 * first. The root's `npm run bench` measures the same commands as its `cli` row.
 *
 * `npx tsx packages/emulator/scripts/startup.ts [N]` (default 10).
 */
import * as Effect from "effect/Effect"
import * as os from "node:os"
import { measureStartup } from "./startupMeasure.js"

const runs = Number(process.argv[2] ?? 10)

Effect.runPromise(measureStartup(runs, { unbundled: true })).then((results) => {
  console.log(
    `CLI start-up, ${runs} fresh processes each, medians (${os.cpus().length} CPUs, load ${
      os.loadavg()[0]!.toFixed(1)
    }):`
  )
  console.log(`| command | wall | CPU (user + system) |\n| --- | ---: | ---: |`)
  for (const r of results) console.log(`| \`${r.label}\` | ${r.wallMs.toFixed(0)} ms | ${r.cpuMs.toFixed(0)} ms |`)
}).catch((error) => {
  console.error(error)
  process.exitCode = 1
})

import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const librarySource = fileURLToPath(new URL("./src/", import.meta.url))

export default defineConfig({
  resolve: {
    // The emulator package imports the library by its name: tests run against the library's sources.
    alias: [
      { find: /^effect-azure-identity$/, replacement: `${librarySource}index.ts` },
      { find: /^effect-azure-identity\/(?!internal\/)([A-Za-z]+)$/, replacement: `${librarySource}$1.ts` }
    ]
  },
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    setupFiles: ["./test/support/isolateMachine.ts", "./test/support/networkGuard.ts"],
    reporters: ["default", "json"],
    outputFile: { json: "reports/vitest-results.json" },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts", "packages/*/src/**/*.ts"],
      reporter: ["text-summary", "json-summary"],
      thresholds: { lines: 90 }
    }
  }
})

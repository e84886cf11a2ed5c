import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/support/isolateMachine.ts", "./test/support/networkGuard.ts"],
    reporters: ["default", "json"],
    outputFile: { json: "reports/vitest-results.json" },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      reporter: ["text-summary", "json-summary"],
      thresholds: { lines: 90 }
    }
  }
})

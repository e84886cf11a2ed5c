import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as List from "effect/List"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as TestClock from "effect/TestClock"

/** 2026-11-27T08:00:00Z: tests set the clock here first (TestClock starts at epoch 0). */
export const T0 = Date.UTC(2026, 10, 27, 8, 0, 0)

export const setNow = TestClock.setTime(T0)

/** Configuration from a map only: never the real environment. */
export const withEnv = (env: Record<string, string> = {}) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

export const envLayer = (env: Record<string, string> = {}) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

/** Lets forked fibers (background refreshes) run to completion without moving the clock. */
export const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow(), { discard: true })

/** Captures every log line, at every level, as text (message, cause and annotations). */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    lines.push(
      [
        logLevel.label,
        JSON.stringify(message),
        String(cause),
        JSON.stringify(Object.fromEntries([...annotations]))
      ].join(" ")
    )
  })
  const layer = Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))
  return { lines, layer }
}

export const listToArray = List.toArray

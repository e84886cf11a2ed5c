import type * as Exit from "effect/Exit"
import * as Tracer from "effect/Tracer"

/** A span as the recording tracer keeps it. */
export interface RecordedSpan {
  readonly name: string
  readonly attributes: Map<string, unknown>
  readonly events: Array<{ readonly name: string; readonly attributes: Record<string, unknown> | undefined }>
  exit?: Exit.Exit<unknown, unknown>
}

/** A tracer that keeps every span: its name, attributes, events and exit. */
export const recordingTracer = () => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const record: RecordedSpan = { name, attributes: new Map(), events: [] }
      spans.push(record)
      return {
        _tag: "Span",
        name,
        spanId: String(spans.length),
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes: record.attributes,
        links,
        sampled: true,
        kind,
        end: (_, exit) => {
          record.exit = exit
        },
        attribute: (key, value) => {
          record.attributes.set(key, value)
        },
        event: (eventName, _, attributes) => {
          record.events.push({ name: eventName, attributes })
        },
        addLinks: () => {}
      }
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

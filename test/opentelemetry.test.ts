/**
 * The real `@effect/opentelemetry` pipeline (`NodeSdk.layer`, the OpenTelemetry SDK's tracer provider and metric
 * reader) with the SDK's in-memory exporters, against a mock token endpoint: the spans and metrics a user exports,
 * by name and attribute, as docs/observability.md lists them, and never the token or the client secret.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { assert, describe, it } from "@effect/vitest"
import type { MetricData, ResourceMetrics } from "@opentelemetry/sdk-metrics"
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { AzurePipelinesCredential, ClientSecretCredential, TokenCredential } from "../src/index.js"
import { setNow, withEnv } from "./support/helpers.js"
import { json, mockHttp, tokenBody } from "./support/mockHttp.js"

const SCOPE = "https://vault.azure.net/.default"
const TENANT = "00000000-0000-0000-0000-0000000000a1"
const SECRET = "otel-client-secret-value"
const TOKEN = "otel-access-token-value"

/** The exporters and the layer that wires them through `NodeSdk.layer`, as a user would. */
const telemetry = () => {
  const spans = new InMemorySpanExporter()
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // exports only when flushed (the interval is never reached in a test)
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 })
  const layer = NodeSdk.layer(() => ({
    resource: { serviceName: "otel-test" },
    spanProcessor: new SimpleSpanProcessor(spans),
    metricReader: reader
  }))
  return { spans, metrics, reader, layer }
}

const metricNamed = (exported: ReadonlyArray<ResourceMetrics>, name: string): MetricData => {
  const last = exported.at(-1)
  assert.isDefined(last, "no metrics exported")
  const found = last!.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name)
  assert.isDefined(found, `metric ${name} not exported`)
  return found!
}

/** Every string a span carries to an exporter: name, attributes, events and their attributes, status. */
const spanText = (span: ReadableSpan): string =>
  JSON.stringify({
    name: span.name,
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
    status: span.status,
    links: span.links
  })

describe("@effect/opentelemetry export", () => {
  it.effect("spans and metrics reach the OpenTelemetry SDK with the documented names, never a token or a secret", () => {
    const otel = telemetry()
    let calls = 0
    const http = mockHttp(() => {
      calls++
      // the first request is refused (the authority echoes the secret back); the second takes 40 ms and succeeds
      return calls === 1
        ? json(401, {
          error: "invalid_client",
          error_description: `AADSTS7000215: Invalid client secret provided: ${SECRET}`,
          error_codes: [7000215]
        })
        : Effect.as(TestClock.adjust("40 millis"), json(200, tokenBody(TOKEN)))
    })
    const credential = ClientSecretCredential.layer({
      tenantId: TENANT,
      clientId: "otel-client",
      clientSecret: Redacted.make(SECRET),
      authorityHost: "https://login.example.test",
      retryPolicy: { maxRetries: 0 }
    }).pipe(Layer.provide(http.layer))
    return Effect.gen(function*() {
      yield* setNow
      const program = Effect.gen(function*() {
        const refused = yield* Effect.exit(TokenCredential.getToken(SCOPE))
        assert.isTrue(Exit.isFailure(refused))
        yield* TestClock.adjust("31 seconds") // past the held refusal
        const token = yield* TokenCredential.getToken(SCOPE)
        assert.strictEqual(Redacted.value(token.token), TOKEN)
        yield* TokenCredential.getToken(SCOPE) // from memory: no request, no requestToken span
        yield* Effect.promise(() => otel.reader.forceFlush())
        // read before the layers close: shutting the SDK down empties the in-memory exporters
        return { spans: [...otel.spans.getFinishedSpans()], exported: [...otel.metrics.getMetrics()] }
      })
      // the telemetry layer is outermost, as at the edge of an app: the credential's spans run under its tracer
      const { exported, spans } = yield* program.pipe(Effect.provide(credential), Effect.provide(otel.layer), withEnv())

      // spans
      const requests = spans.filter((s) => s.name === "ClientSecretCredential.requestToken")
      assert.strictEqual(requests.length, 2, spans.map((s) => s.name).join(", "))
      for (const span of requests) {
        assert.deepStrictEqual(span.attributes, {
          "azure.identity.credential": "ClientSecretCredential",
          "azure.identity.tenant": TENANT,
          "azure.identity.scopes": SCOPE,
          "azure.identity.authority": "https://login.example.test"
        })
      }
      assert.deepStrictEqual(requests.map((s) => s.status.code), [2, 1], "ERROR, then OK")
      const [refusedSpan, okSpan] = requests
      assert.include(refusedSpan!.status.message, "AADSTS7000215")
      assert.isTrue(refusedSpan!.events.some((e) => e.name === "exception"), "the refusal is recorded")
      // the HTTP client's span is a child of the token request's, in the same trace
      const httpSpans = spans.filter((s) => s.name.startsWith("http.client"))
      assert.strictEqual(httpSpans.length, 2)
      for (const span of httpSpans) {
        const parent = requests.find((r) => r.spanContext().spanId === span.parentSpanContext?.spanId)
        assert.isDefined(parent, `${span.name} has no requestToken parent`)
        assert.strictEqual(span.spanContext().traceId, parent!.spanContext().traceId)
      }
      assert.strictEqual(okSpan!.resource.attributes["service.name"], "otel-test")
      for (const span of spans) {
        const text = spanText(span)
        assert.notInclude(text, TOKEN, span.name)
        assert.notInclude(text, SECRET, span.name)
        for (const key of Object.keys(span.attributes)) {
          assert.match(key, /^azure\.identity\.|^http\.|^url\.|^server\.|^user_agent\.|^code\./, span.name)
        }
      }

      // metrics
      const counter = metricNamed(exported, "azure_identity.token_requests")
      assert.strictEqual(counter.dataPointType, DataPointType.SUM)
      const counts = Object.fromEntries(
        counter.dataPoints.map((p) => [`${p.attributes["credential"]}/${p.attributes["outcome"]}`, p.value])
      )
      assert.deepStrictEqual(counts, {
        "ClientSecretCredential/rejected-by-authority": 1,
        "ClientSecretCredential/success": 1
      })
      for (const point of counter.dataPoints) {
        assert.deepStrictEqual(Object.keys(point.attributes).sort(), ["credential", "outcome"])
      }
      const latency = metricNamed(exported, "azure_identity.token_request_duration_ms")
      assert.strictEqual(latency.dataPointType, DataPointType.HISTOGRAM)
      assert.strictEqual(latency.dataPoints.length, 1)
      const histogram = latency.dataPoints[0]!
      assert.deepStrictEqual(histogram.attributes, { credential: "ClientSecretCredential" })
      const value = histogram.value as { count: number; max?: number; sum?: number }
      assert.strictEqual(value.count, 2)
      assert.strictEqual(value.max, 40)
      const cached = metricNamed(exported, "azure_identity.cached_tokens")
      assert.strictEqual(cached.dataPointType, DataPointType.GAUGE)
      assert.deepStrictEqual(
        cached.dataPoints.map((p) => [p.attributes, p.value]),
        [[{ credential: "ClientSecretCredential" }, 1]]
      )
      const everything = JSON.stringify(exported, (_key, v) => (typeof v === "bigint" ? String(v) : v))
      assert.notInclude(everything, TOKEN)
      assert.notInclude(everything, SECRET)
      assert.notInclude(everything, "vault.azure.net", "no scope in a metric")
    })
  })

  it.effect("AzurePipelinesCredential: the OIDC request's span names its attributes azure.identity.*, no token in any", () => {
    const otel = telemetry()
    const systemToken = "otel-system-access-token"
    const oidcToken = "otel-oidc-assertion"
    const http = mockHttp((request) =>
      request.url.pathname.endsWith("/oidctoken")
        ? json(200, { oidcToken })
        : json(200, tokenBody(TOKEN))
    )
    const credential = AzurePipelinesCredential.layer({
      tenantId: TENANT,
      clientId: "otel-client",
      serviceConnectionId: "otel-connection",
      systemAccessToken: Redacted.make(systemToken),
      authorityHost: "https://login.example.test"
    }).pipe(Layer.provide(http.layer))
    return Effect.gen(function*() {
      yield* setNow
      const spans = yield* TokenCredential.getToken(SCOPE).pipe(
        Effect.zipRight(Effect.sync(() => [...otel.spans.getFinishedSpans()])),
        Effect.provide(credential),
        Effect.provide(otel.layer),
        withEnv({ SYSTEM_OIDCREQUESTURI: "https://dev.azure.com/contoso/p1/_apis/distributedtask/jobs/j1/oidctoken" })
      )
      const oidc = spans.find((s) => s.name === "AzurePipelinesCredential.oidcToken")
      assert.isDefined(oidc, spans.map((s) => s.name).join(", "))
      assert.deepStrictEqual(oidc!.attributes, {
        "azure.identity.credential": "AzurePipelinesCredential",
        "azure.identity.service_connection_id": "otel-connection"
      })
      const request = spans.find((s) => s.name === "AzurePipelinesCredential.requestToken")
      assert.strictEqual(request?.attributes["azure.identity.credential"], "AzurePipelinesCredential")
      // the OIDC request's HTTP span shows its Authorization header redacted
      const oidcHttp = spans.find((s) =>
        s.name.startsWith("http.client") && s.parentSpanContext?.spanId === oidc!.spanContext().spanId
      )
      assert.strictEqual(oidcHttp?.attributes["http.request.header.authorization"], "<redacted>")
      for (const span of spans) {
        const text = spanText(span)
        for (const secret of [systemToken, oidcToken, TOKEN]) assert.notInclude(text, secret, span.name)
      }
    })
  })
})

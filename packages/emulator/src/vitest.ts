/**
 * The emulator as a vitest fixture, for `@effect/vitest`'s `it.layer` (an optional peer dependency of this package).
 *
 * - {@link layer}: the emulator plus your credential layer built against it, so the credential reads the emulator's
 *   variables for a scenario (never `process.env`). Pass it to `it.layer`: one emulator and one credential (one token
 *   cache) for the tests of the block, stopped after them.
 * - {@link describe}: `it.layer(layer(...))(name, f)` in one call.
 *
 * @example
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import { Effect, Layer, Redacted } from "effect"
 * import { ClientSecretCredential, TokenCredential } from "effect-azure-identity"
 * import * as IdentityNode from "effect-azure-identity/node"
 * import * as IdentityEmulator from "effect-azure-identity-emulator"
 * import * as EmulatorFixture from "effect-azure-identity-emulator/vitest"
 *
 * const Credential = ClientSecretCredential.layerConfig().pipe(Layer.provide(IdentityNode.layer))
 *
 * it.layer(EmulatorFixture.layer(Credential, { scenario: "environment" }))("my service", (it) => {
 *   it.effect("gets a token the emulator signed", () =>
 *     Effect.gen(function*() {
 *       const token = yield* TokenCredential.getToken("https://vault.azure.net/.default")
 *       const emulator = yield* IdentityEmulator.IdentityEmulator
 *       const claims = yield* emulator.verifyToken(Redacted.value(token.token))
 *       assert.strictEqual(claims.aud, "https://vault.azure.net")
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Vitest from "@effect/vitest"
import * as Layer from "effect/Layer"
import * as IdentityEmulator from "./IdentityEmulator.js"

/**
 * The options of `layer` and `describe`, both optional: the scenario whose variables the credential reads, and the
 * emulator's options.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Which variables the credential sees (default `all`): see `IdentityEmulator.Scenario`. */
  readonly scenario?: IdentityEmulator.Scenario | undefined
  /** The emulator's own options (apps, users, identities, token lifetime, TLS). */
  readonly emulator?: IdentityEmulator.Options | undefined
}

/**
 * A started emulator and `credential` built against it (its configuration read from the emulator's variables for
 * `scenario`); provides both.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <ROut, E, RIn>(
  credential: Layer.Layer<ROut, E, RIn>,
  options: Options = {}
): Layer.Layer<
  ROut | IdentityEmulator.IdentityEmulator,
  E | IdentityEmulator.EmulatorError,
  Exclude<RIn, IdentityEmulator.IdentityEmulator>
> =>
  credential.pipe(
    Layer.provide(IdentityEmulator.layerConfigProvider(options.scenario ?? "all")),
    Layer.provideMerge(IdentityEmulator.layer(options.emulator))
  ) as Layer.Layer<
    ROut | IdentityEmulator.IdentityEmulator,
    E | IdentityEmulator.EmulatorError,
    Exclude<RIn, IdentityEmulator.IdentityEmulator>
  >

/**
 * `it.layer(layer(credential, options))(name, f)`: a `describe` block whose tests share one emulator and one
 * credential.
 *
 * @since 0.1.0
 * @category testing
 */
export const describe = <ROut, E>(
  name: string,
  credential: Layer.Layer<ROut, E>,
  options: Options,
  f: (it: Vitest.Vitest.MethodsNonLive<ROut | IdentityEmulator.IdentityEmulator>) => void
): void => Vitest.layer(layer(credential, options))(name, f)

/**
 * Whether the current `getToken` runs as a link of a chain (`ChainedTokenCredential`, `DefaultAzureCredential`).
 * Like azure-identity for Python's `within_credential_chain`, a credential may then give up sooner: the managed
 * identity's IMDS source probes first and does not retry connection failures, so a chain outside Azure moves on.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"

/** @internal */
export const withinChain: FiberRef.FiberRef<boolean> = globalValue(
  Symbol.for("effect-azure-identity/internal/chainContext/withinChain"),
  () => FiberRef.unsafeMake(false)
)

/** Runs `self` as a chain link. @internal */
export const asLink = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(self, withinChain, true)

import * as Effect from "effect/Effect"

/**
 * A value made on first use and kept: for schemas and their decoders, which cost 0.1–0.7 ms each to build. Built at
 * import, the library's internal ones were a third of what `import "effect-azure-identity"` costs (docs/performance.md,
 * "Import cost"); built on first use, a program pays only for the ones its credentials decode with.
 *
 * @internal
 */
export const lazy = <A>(make: () => A): () => A => {
  let made: { readonly value: A } | undefined
  return () => (made ??= { value: make() }).value
}

/**
 * A module loaded on first use and kept: `import()` of the code a credential needs only once its layer is built (e.g.
 * the managed identity hosts, the MSAL cache file), so that `import "effect-azure-identity"` does not parse it. The
 * published bundle puts each such module in a chunk of its own (scripts/build.mjs); see docs/performance.md, "Import
 * cost". Once loaded, the effect succeeds synchronously.
 *
 * @internal
 */
export const lazyModule = <A>(load: () => Promise<A>): Effect.Effect<A> => {
  let loaded: { readonly module: A } | undefined
  let loading: Promise<A> | undefined
  return Effect.suspend(() =>
    loaded !== undefined
      ? Effect.succeed(loaded.module)
      : Effect.promise(() => (loading ??= load().then((module) => {
        loaded = { module }
        return module
      }, (error) => {
        // a failed load (a defect) is tried again by the next caller
        loading = undefined
        throw error
      })))
  )
}

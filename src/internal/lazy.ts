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

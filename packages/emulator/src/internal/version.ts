/**
 * The version of this package, printed by `--version` and sent in the emulator's `x-ms-*` headers.
 *
 * @internal
 */
export const version = "0.1.0"

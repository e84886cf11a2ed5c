/**
 * The span attribute names every credential uses (documented in docs/observability.md). Never a token, a secret or
 * a request body.
 *
 * @internal
 */
export const attributes = (
  credential: string,
  scopes: string | ReadonlyArray<string>,
  extra: Readonly<Record<string, string | undefined>> = {}
): Record<string, string> => {
  const out: Record<string, string> = {
    "azure.identity.credential": credential,
    "azure.identity.scopes": typeof scopes === "string" ? scopes : scopes.join(" ")
  }
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) out[`azure.identity.${key}`] = value
  return out
}

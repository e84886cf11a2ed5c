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
    // a JavaScript caller (the Azure SDK adapter) may pass anything: the span never throws
    "azure.identity.scopes": typeof scopes === "string"
      ? scopes
      : Array.isArray(scopes)
      ? scopes.join(" ")
      : String(scopes)
  }
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) out[`azure.identity.${key}`] = value
  return out
}

/** The first capture of `pattern` in the app's /metrics text, as a number (0 when the series is absent). */
export async function metric(t: { readonly url: string }, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const match = pattern.exec(text);
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

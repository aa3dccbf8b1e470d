// Times as the dashboard shows and sends them: the browser's locale and zone on screen, ISO on the wire.

/** A server time in this browser's locale, or a dash when there is none. */
export function when(at: string | null | undefined): string {
  return at ? new Date(at).toLocaleString() : '—';
}

/** The value of an `<input type="datetime-local">` (local time) as an ISO time, or null. */
export function localToIso(value: string): string | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

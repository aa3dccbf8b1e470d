// The recipients editor's rows: an address and the kinds of notice it receives.
import type { Recipient } from '../../lib/api/client';

/** Turn a kind on or off for one row. */
export function toggled(kinds: string[], kind: string, on: boolean): string[] {
  const rest = kinds.filter((k) => k !== kind);
  return on ? [...rest, kind] : rest;
}

/** What to save: addresses trimmed, blank rows left out, kinds in the server's order. */
export function cleaned(rows: Recipient[], order: string[]): Recipient[] {
  return rows
    .map((row) => ({ address: row.address.trim(), kinds: order.filter((kind) => row.kinds.includes(kind)) }))
    .filter((row) => row.address !== '');
}

// Where each automation's flags are edited: once per page, since automations share some.
import type { Automation } from '../lib/api/client';

export interface PlacedFlag {
  key: string;
  /** null: edited on this card; otherwise the title of the place that edits it. */
  editedIn: string | null;
}

/** Each automation's switch then parameters; a flag already edited elsewhere is pointed to. */
export function placeFlags(items: Automation[], editedAbove: Record<string, string>): Record<string, PlacedFlag[]> {
  const editedIn = new Map(Object.entries(editedAbove));
  const placed: Record<string, PlacedFlag[]> = {};
  for (const automation of items) {
    const keys = [automation.switch_flag, ...automation.parameter_flags].filter((key): key is string => !!key);
    placed[automation.id] = keys.map((key) => {
      const owner = editedIn.get(key) ?? null;
      if (owner === null) editedIn.set(key, automation.title);
      return { key, editedIn: owner };
    });
  }
  return placed;
}

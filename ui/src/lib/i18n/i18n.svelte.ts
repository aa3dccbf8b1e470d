// The UI language: English or French, remembered in this browser.
import { en, type MessageKey, type Messages } from './en';
import { fr } from './fr';

export const catalogs: Record<Locale, Messages> = { en, fr };
export type Locale = 'en' | 'fr';
const STORAGE_KEY = 'archipel.locale';

function initialLocale(): Locale {
  const stored = typeof localStorage === 'undefined' ? null : localStorage.getItem(STORAGE_KEY);
  if (stored === 'en' || stored === 'fr') return stored;
  const browser = typeof navigator === 'undefined' ? 'en' : navigator.language;
  return browser.toLowerCase().startsWith('fr') ? 'fr' : 'en';
}

export function format(template: string, params: Record<string, string | number> = {}): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? `{${name}}`));
}

class I18n {
  locale = $state<Locale>(initialLocale());

  set(locale: Locale): void {
    this.locale = locale;
    localStorage.setItem(STORAGE_KEY, locale);
    document.documentElement.lang = locale;
  }

  t = (key: MessageKey, params?: Record<string, string | number>): string =>
    format(catalogs[this.locale][key], params);

  /** The message for a value the server sends (a status, a kind), or the value itself if unknown. */
  tOr = (key: string, fallback: string): string => catalogs[this.locale][key as MessageKey] ?? fallback;
}

export const i18n = new I18n();
export const t = i18n.t;
export const tOr = i18n.tOr;

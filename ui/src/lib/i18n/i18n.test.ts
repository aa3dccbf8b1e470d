import { describe, expect, it } from 'vitest';
import { en } from './en';
import { fr } from './fr';
import { format } from './i18n.svelte';

describe('message catalogs', () => {
  it('have the same keys and no empty message', () => {
    expect(Object.keys(fr).sort()).toEqual(Object.keys(en).sort());
    for (const [key, text] of [...Object.entries(en), ...Object.entries(fr)]) {
      expect(text.trim(), key).not.toBe('');
    }
  });

  it('use the same placeholders in both languages', () => {
    const names = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(names(fr[key]), key).toEqual(names(en[key]));
    }
  });

  it('fills placeholders', () => {
    expect(format('Step {current} of {total}', { current: 2, total: 8 })).toBe('Step 2 of 8');
  });
});

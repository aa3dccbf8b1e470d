import { describe, expect, it } from 'vitest';
import type { Flag } from '../api/client';
import { FlagsStore } from './settings.svelte';

function flag(key: string, value: Flag['value'], page = 'advanced-settings'): Flag {
  return {
    key, value, default: false, is_default: true, type: 'bool', scope: 'local', page,
    description: key, choices: [], unit: '', minimum: null, maximum: null, max_length: null,
    last_change: null,
  };
}

describe('FlagsStore', () => {
  it('patches one flag and filters by page', () => {
    const store = new FlagsStore();
    store.items = [flag('pool.debug', false), flag('federation.rag_fanout', false, 'federation')];
    store.patch({ ...flag('pool.debug', true), is_default: false });
    expect(store.items.find((f) => f.key === 'pool.debug')?.value).toBe(true);
    expect(store.onPage('federation').map((f) => f.key)).toEqual(['federation.rag_fanout']);
  });
});

import { describe, expect, it } from 'vitest';
import type { CatalogSync } from '../api/client';
import { masterLabel, syncMessage } from './models.svelte';

const satellite = (more: Partial<CatalogSync>): CatalogSync => ({
  role: 'satellite', master_pool_id: 'pool-m', master_name: null, paired: true, applied_seq: 0,
  master_head_seq: 0, lag_events: 0, last_seen_at: null, master_models: 0, conflicts: [], ...more,
});

describe('catalog sync', () => {
  it('names the master by its name when known, else by its pool id', () => {
    expect(masterLabel(satellite({ master_name: 'lyon-1' }))).toBe('lyon-1');
    expect(masterLabel(satellite({}))).toBe('pool-m');
  });

  it('says in sync, how many events behind, or not synced before any contact', () => {
    const seen = '2026-03-01T10:00:00Z';
    expect(syncMessage(satellite({}))).toEqual(['models.sync.never', {}]);
    expect(syncMessage(satellite({ last_seen_at: seen }))).toEqual(['models.sync.inSync', {}]);
    expect(syncMessage(satellite({ last_seen_at: seen, lag_events: 1 }))).toEqual(['models.sync.behindOne', { count: 1 }]);
    expect(syncMessage(satellite({ last_seen_at: seen, lag_events: 12 }))).toEqual(['models.sync.behind', { count: 12 }]);
  });
});

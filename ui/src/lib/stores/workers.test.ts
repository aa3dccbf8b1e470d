import { describe, expect, it } from 'vitest';
import { looks, type Worker } from './workers.svelte';

function worker(status: string, activity: string): Worker {
  return {
    id: '1', url: 'http://w:11434', name: 'w', labels: [], capacity: 4, status,
    status_reason: '', status_since: '2026-01-01T00:00:00Z', drained: false, activity,
    inflight: null, latency_ms: null, version: null, installed_models: [], loaded_models: [],
    checked_at: null,
  };
}

describe('looks', () => {
  it('refines online workers by live activity, and keeps offline and unknown as they are', () => {
    expect(looks(worker('online', 'busy'))).toBe('busy');
    expect(looks(worker('online', 'idle'))).toBe('idle');
    expect(looks(worker('online', 'unknown'))).toBe('online');
    expect(looks(worker('offline', 'idle'))).toBe('offline');
    expect(looks(worker('unknown', 'unknown'))).toBe('unknown');
  });
});

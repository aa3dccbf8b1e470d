import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/client';
import { bus } from '../bus';
import { LiveResource } from './resource.svelte';

describe('LiveResource', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('refetches once for a burst of notices about its views, and ignores other views', async () => {
    let calls = 0;
    const resource = new LiveResource(['incidents'], async () => ++calls);
    await resource.load();
    const stop = resource.follow();
    bus.emit('change', [{ view: 'workers', key: 'w', position: 1 }]);
    await vi.advanceTimersByTimeAsync(500);
    expect(calls).toBe(1);
    bus.emit('change', [{ view: 'incidents', key: 'a', position: 2 }]);
    bus.emit('change', [{ view: 'incidents', key: 'b', position: 3 }]);
    await vi.advanceTimersByTimeAsync(500);
    expect(calls).toBe(2);
    expect(resource.data).toBe(2);
    stop();
    bus.emit('resync', { reason: 'test' });
    await vi.advanceTimersByTimeAsync(500);
    expect(calls).toBe(2);
  });

  it('keeps the last answer and says why a fetch failed', async () => {
    let fail = false;
    const resource = new LiveResource(['mail'], async () => {
      if (fail) throw new ApiError(503, 'unavailable', 'the database is down');
      return 'ok';
    });
    await resource.load();
    fail = true;
    await resource.load();
    expect(resource.data).toBe('ok');
    expect(resource.error).toBe('the database is down');
  });
});

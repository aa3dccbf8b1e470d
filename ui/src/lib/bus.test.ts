import { describe, expect, it } from 'vitest';
import { type BusEvents, EventBus } from './bus';

describe('EventBus', () => {
  it('delivers to every handler of an event until it unsubscribes', () => {
    const bus = new EventBus<BusEvents>();
    const seen: string[] = [];
    const off = bus.on('state', (state) => seen.push(`a:${state}`));
    bus.on('state', (state) => seen.push(`b:${state}`));
    bus.emit('state', 'open');
    off();
    bus.emit('state', 'closed');
    expect(seen).toEqual(['a:open', 'b:open', 'b:closed']);
  });

  it('calls view handlers only for notices naming their views, and on resync', () => {
    const bus = new EventBus<BusEvents>();
    let calls = 0;
    bus.onViews(['settings'], () => calls++);
    bus.emit('change', [{ view: 'audit', key: '1', position: 1 }]);
    expect(calls).toBe(0);
    bus.emit('change', [
      { view: 'audit', key: '2', position: 2 },
      { view: 'settings', key: 'pool.debug', position: 2 },
    ]);
    expect(calls).toBe(1);
    bus.emit('resync', { reason: 'missed too much' });
    expect(calls).toBe(2);
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bus, type ChangeNotice, type LiveState } from '../bus';
import { LiveStream } from './live.svelte';

// A stand-in for the browser's EventSource, which Node does not have.
class FakeEventSource {
  static CLOSED = 2;
  static last: FakeEventSource | null = null;
  readyState = 0;
  listeners = new Map<string, ((event: MessageEvent) => void)[]>();
  constructor(readonly url: string) {
    FakeEventSource.last = this;
  }
  addEventListener(name: string, listener: (event: MessageEvent) => void): void {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
  }
  fire(name: string, data = '', lastEventId = ''): void {
    for (const listener of this.listeners.get(name) ?? []) {
      listener({ data, lastEventId } as MessageEvent);
    }
  }
  close(): void {
    this.readyState = FakeEventSource.CLOSED;
  }
}

describe('LiveStream', () => {
  beforeEach(() => {
    (globalThis as unknown as { EventSource: unknown }).EventSource = FakeEventSource;
  });
  afterEach(() => {
    delete (globalThis as unknown as { EventSource?: unknown }).EventSource;
  });

  it('feeds change notices to the bus and tracks the position and the state', () => {
    const live = new LiveStream();
    const states: LiveState[] = [];
    const received: ChangeNotice[][] = [];
    const offState = bus.on('state', (state) => states.push(state));
    const offChange = bus.on('change', (notices) => received.push(notices));
    live.connect('/api/stream');
    const source = FakeEventSource.last as FakeEventSource;
    source.fire('open');
    source.fire('change', JSON.stringify([{ view: 'settings', key: 'pool.debug', position: 7 }]), '7');
    expect(received).toEqual([[{ view: 'settings', key: 'pool.debug', position: 7 }]]);
    expect(live.lastPosition).toBe(7);
    source.readyState = 0;
    source.fire('error');
    expect(live.state).toBe('connecting'); // EventSource retries with Last-Event-ID
    source.readyState = FakeEventSource.CLOSED;
    source.fire('error');
    expect(states).toEqual(['connecting', 'open', 'connecting', 'closed']);
    offState();
    offChange();
  });

  it('passes resync on, and ends on session_ended', () => {
    const live = new LiveStream();
    const events: string[] = [];
    const offResync = bus.on('resync', () => events.push('resync'));
    const offEnded = bus.on('sessionEnded', () => events.push('ended'));
    live.connect();
    const source = FakeEventSource.last as FakeEventSource;
    source.fire('resync', JSON.stringify({ reason: 'missed too much' }), '12');
    source.fire('session_ended', JSON.stringify({ reason: 'logged out' }));
    expect(events).toEqual(['resync', 'ended']);
    expect(live.state).toBe('closed');
    expect(source.readyState).toBe(FakeEventSource.CLOSED);
    offResync();
    offEnded();
  });
});

// The tab's single live connection: Server-Sent Events from /api/stream into the bus.
// EventSource reconnects by itself and sends Last-Event-ID, so the server replays what was
// missed (or says `resync`).
import { bus, type ChangeNotice, type LiveState } from '../bus';

export class LiveStream {
  state = $state<LiveState>('closed');
  lastPosition = $state(0);
  private source: EventSource | null = null;

  connect(url = '/api/stream'): void {
    this.disconnect();
    this.setState('connecting');
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    source.addEventListener('open', () => this.setState('open'));
    source.addEventListener('ready', (event) => this.track(event as MessageEvent));
    source.addEventListener('change', (event) => {
      const message = event as MessageEvent<string>;
      this.track(message);
      bus.emit('change', JSON.parse(message.data) as ChangeNotice[]);
    });
    source.addEventListener('resync', (event) => {
      this.track(event as MessageEvent);
      bus.emit('resync', JSON.parse((event as MessageEvent<string>).data) as { reason: string });
    });
    source.addEventListener('session_ended', (event) => {
      this.disconnect();
      bus.emit('sessionEnded', JSON.parse((event as MessageEvent<string>).data));
    });
    source.addEventListener('error', () => {
      // CLOSED: the server refused us (e.g. the session ended); otherwise it retries.
      this.setState(source.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
    });
  }

  disconnect(): void {
    this.source?.close();
    this.source = null;
    this.setState('closed');
  }

  private track(event: MessageEvent): void {
    const position = Number(event.lastEventId);
    if (Number.isFinite(position) && position > 0) this.lastPosition = position;
  }

  private setState(state: LiveState): void {
    if (this.state !== state) {
      this.state = state;
      bus.emit('state', state);
    }
  }
}

export const live = new LiveStream();

// Workers and their live telemetry, refetched (at most every 300 ms) on workers/telemetry notices.
import { api, type Schemas, unwrap } from '../api/client';
import { bus } from '../bus';

export type Worker = Schemas['WorkerPublic'];
export type WorkerCounts = Schemas['WorkerCounts'];

export class WorkersStore {
  items = $state<Worker[]>([]);
  counts = $state<WorkerCounts | null>(null);
  loaded = $state(false);
  private pending: ReturnType<typeof setTimeout> | null = null;

  async load(): Promise<void> {
    const answer = unwrap(await api.GET('/api/workers'));
    this.items = answer.items;
    this.counts = answer.counts;
    this.loaded = true;
  }

  follow(): () => void {
    return bus.onViews(['workers', 'telemetry'], () => {
      this.pending ??= setTimeout(() => {
        this.pending = null;
        void this.load();
      }, 300);
    });
  }
}

/** How a worker looks: its recorded status, refined by live activity when online. */
export function looks(worker: Worker): 'busy' | 'idle' | 'online' | 'offline' | 'unknown' {
  if (worker.status === 'online') {
    return worker.activity === 'busy' ? 'busy' : worker.activity === 'idle' ? 'idle' : 'online';
  }
  return worker.status === 'offline' ? 'offline' : 'unknown';
}

// The Overview KPIs, refetched (at most every 500 ms) when anything changes.
import { api, type Overview, unwrap } from '../api/client';
import { bus } from '../bus';

export class OverviewStore {
  data = $state<Overview | null>(null);
  private pending: ReturnType<typeof setTimeout> | null = null;

  async load(): Promise<void> {
    this.data = unwrap(await api.GET('/api/overview'));
  }

  follow(): () => void {
    const offChange = bus.on('change', () => this.soon());
    const offResync = bus.on('resync', () => this.soon());
    return () => {
      offChange();
      offResync();
    };
  }

  private soon(): void {
    this.pending ??= setTimeout(() => {
      this.pending = null;
      void this.load();
    }, 500);
  }
}

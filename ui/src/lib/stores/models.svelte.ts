// The catalog with deployments, refetched (at most every 300 ms) when it or a worker changes.
import { api, type Model, unwrap } from '../api/client';
import { bus } from '../bus';

export class ModelsStore {
  items = $state<Model[]>([]);
  loaded = $state(false);
  private pending: ReturnType<typeof setTimeout> | null = null;

  async load(): Promise<void> {
    this.items = unwrap(await api.GET('/api/models')).items;
    this.loaded = true;
  }

  follow(): () => void {
    return bus.onViews(['catalog', 'deployments', 'workers'], () => {
      this.pending ??= setTimeout(() => {
        this.pending = null;
        void this.load();
      }, 300);
    });
  }
}

export function sizeLabel(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} KB`;
}

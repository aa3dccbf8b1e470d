// The catalog with deployments, refetched (at most every 300 ms) when it or a worker changes.
import { api, type CatalogSync, type Model, unwrap } from '../api/client';
import { bus } from '../bus';
import type { MessageKey } from '../i18n/en';

export class ModelsStore {
  items = $state<Model[]>([]);
  catalog = $state<CatalogSync>({ role: 'standalone', master_pool_id: null });
  loaded = $state(false);
  private pending: ReturnType<typeof setTimeout> | null = null;

  /** A satellite's catalog follows its master's: no adding, editing or retiring here. */
  get readOnly(): boolean {
    return this.catalog.role === 'satellite';
  }

  async load(): Promise<void> {
    const answer = unwrap(await api.GET('/api/models'));
    this.items = answer.items;
    this.catalog = answer.catalog;
    this.loaded = true;
  }

  follow(): () => void {
    // settings: the catalog role is a flag; peers: pairing; replication: a batch from the master.
    return bus.onViews(['catalog', 'deployments', 'workers', 'replication', 'settings', 'peers'], () => {
      this.pending ??= setTimeout(() => {
        this.pending = null;
        void this.load();
      }, 300);
    });
  }
}

/** What a model can do, as the API accepts them. */
export const CAPABILITIES = ['chat', 'embedding', 'vision', 'code', 'tools'] as const;

export function sizeLabel(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} KB`;
}

/** The master a satellite follows: its name when known, else its pool id. */
export const masterLabel = (catalog: CatalogSync): string => catalog.master_name || catalog.master_pool_id || '—';

/** How far a satellite follows its master, as a message key and its parameters. */
export function syncMessage(catalog: CatalogSync): [MessageKey, Record<string, number>] {
  const lag = catalog.lag_events ?? 0;
  if (!catalog.last_seen_at) return ['models.sync.never', {}];
  if (lag === 0) return ['models.sync.inSync', {}];
  return [lag === 1 ? 'models.sync.behindOne' : 'models.sync.behind', { count: lag }];
}

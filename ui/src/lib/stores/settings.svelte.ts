// Runtime flags: loaded once, refetched when a change notice names the settings view.
import { api, type Flag, unwrap } from '../api/client';
import { bus } from '../bus';

export type FlagValue = Flag['value'];

export class FlagsStore {
  items = $state<Flag[]>([]);
  loaded = $state(false);
  private stop: (() => void) | null = null;

  async load(): Promise<void> {
    this.items = unwrap(await api.GET('/api/settings')).items;
    this.loaded = true;
  }

  /** Keep up to date with changes made elsewhere (another tab, admin or process). */
  follow(): () => void {
    this.stop ??= bus.onViews(['settings'], () => void this.load());
    return () => {
      this.stop?.();
      this.stop = null;
    };
  }

  async save(key: string, value: FlagValue, reason: string): Promise<Flag> {
    const saved = unwrap(
      await api.PUT('/api/settings/{key}', { params: { path: { key } }, body: { value, reason } }),
    );
    this.patch(saved);
    return saved;
  }

  patch(flag: Flag): void {
    this.items = this.items.map((item) => (item.key === flag.key ? flag : item));
  }

  onPage(page: string): Flag[] {
    return this.items.filter((flag) => flag.page === page);
  }
}

export const flags = new FlagsStore();

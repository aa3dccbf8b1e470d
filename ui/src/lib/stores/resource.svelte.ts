// One API answer kept up to date: refetched (at most every `delay` ms) when a change notice
// names one of its views, or on resync.
import { errorMessage } from '../api/client';
import { bus } from '../bus';
import type { LiveStore } from './follow';

export class LiveResource<T> implements LiveStore {
  data = $state<T | null>(null);
  /** Why the last fetch failed ('' when it worked): shown instead of an empty list. */
  error = $state('');
  private pending: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly views: string[],
    private readonly fetch: () => Promise<T>,
    private readonly delay = 300,
  ) {}

  async load(): Promise<void> {
    try {
      this.data = await this.fetch();
      this.error = '';
    } catch (error) {
      this.error = errorMessage(error);
    }
  }

  follow(): () => void {
    const stop = bus.onViews(this.views, () => {
      this.pending ??= setTimeout(() => {
        this.pending = null;
        void this.load();
      }, this.delay);
    });
    return () => {
      stop();
      if (this.pending) clearTimeout(this.pending);
      this.pending = null;
    };
  }
}

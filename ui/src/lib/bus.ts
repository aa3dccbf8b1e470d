// One typed event bus per tab, fed by the single live stream.

export interface ChangeNotice {
  view: string;
  key: string;
  position: number;
}

export type LiveState = 'connecting' | 'open' | 'closed';

export interface BusEvents {
  change: ChangeNotice[];
  resync: { reason: string };
  state: LiveState;
  sessionEnded: { reason: string };
}

type Handler<T> = (payload: T) => void;

export class EventBus<E extends object> {
  private handlers = new Map<keyof E, Set<Handler<never>>>();

  on<K extends keyof E>(name: K, handler: Handler<E[K]>): () => void {
    let set = this.handlers.get(name);
    if (!set) {
      set = new Set();
      this.handlers.set(name, set);
    }
    set.add(handler as Handler<never>);
    return () => set.delete(handler as Handler<never>);
  }

  emit<K extends keyof E>(name: K, payload: E[K]): void {
    for (const handler of this.handlers.get(name) ?? []) (handler as Handler<E[K]>)(payload);
  }

  /** Call `handler` when a change notice names one of `views` (or on resync). */
  onViews(this: EventBus<BusEvents>, views: string[], handler: () => void): () => void {
    const offChange = this.on('change', (notices) => {
      if (notices.some((notice) => views.includes(notice.view))) handler();
    });
    const offResync = this.on('resync', () => handler());
    return () => {
      offChange();
      offResync();
    };
  }
}

export const bus = new EventBus<BusEvents>();

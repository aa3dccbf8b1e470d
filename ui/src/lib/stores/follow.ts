// Load stores now and keep them following live changes; returns the function that stops it.

export interface LiveStore {
  load(): Promise<void>;
  follow(): () => void;
}

export function loadAndFollow(...stores: LiveStore[]): () => void {
  const stops = stores.map((store) => {
    void store.load();
    return store.follow();
  });
  return () => {
    for (const stop of stops) stop();
  };
}

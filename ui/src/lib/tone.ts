// How a status looks, whatever it belongs to (incident, migration, step, mail, notification).

export type Tone = 'bad' | 'warn' | 'good' | 'plain';

const tones: Record<string, Tone> = {
  critical: 'bad', open: 'bad', failed: 'bad', rolled_back: 'bad',
  warning: 'warn', acknowledged: 'warn', proposed: 'warn', running: 'warn', retrying: 'warn',
  resolved: 'good', done: 'good', completed: 'good', sent: 'good', on: 'good',
};

/** `bad` needs attention, `warn` is under way or waits for someone, `good` is over and fine. */
export function tone(status: string): Tone {
  return tones[status] ?? 'plain';
}

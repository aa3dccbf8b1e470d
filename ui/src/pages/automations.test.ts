import { describe, expect, it } from 'vitest';
import type { Automation } from '../lib/api/client';
import { placeFlags } from './automations';

const automation = (id: string, switch_flag: string | null, parameter_flags: string[]) =>
  ({ id, title: id.toUpperCase(), switch_flag, parameter_flags }) as Automation;

describe('placeFlags', () => {
  it('edits each flag once: where it first appears, or above the list', () => {
    const placed = placeFlags(
      [
        automation('health', null, ['workers.interval']),
        automation('migrations', 'cluster.migrations', ['cluster.failover_mode']),
        automation('failover', 'cluster.migrations', ['cluster.failover_mode']),
      ],
      { 'cluster.failover_mode': 'Failover mode' },
    );
    expect(placed.health).toEqual([{ key: 'workers.interval', editedIn: null }]);
    expect(placed.migrations).toEqual([
      { key: 'cluster.migrations', editedIn: null },
      { key: 'cluster.failover_mode', editedIn: 'Failover mode' },
    ]);
    expect(placed.failover).toEqual([
      { key: 'cluster.migrations', editedIn: 'MIGRATIONS' },
      { key: 'cluster.failover_mode', editedIn: 'Failover mode' },
    ]);
  });
});

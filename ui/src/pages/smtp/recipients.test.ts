import { describe, expect, it } from 'vitest';
import { cleaned, toggled } from './recipients';

describe('recipients', () => {
  it('turns a kind on once and off again', () => {
    expect(toggled(['incident'], 'migration', true)).toEqual(['incident', 'migration']);
    expect(toggled(['incident', 'migration'], 'migration', true)).toEqual(['incident', 'migration']);
    expect(toggled(['incident', 'migration'], 'incident', false)).toEqual(['migration']);
  });

  it('saves trimmed addresses without blank rows, kinds in the server order', () => {
    const rows = [
      { address: '  ops@example.org ', kinds: ['migration', 'incident'] },
      { address: '   ', kinds: ['incident'] },
      { address: 'boss@example.org', kinds: [] },
    ];
    expect(cleaned(rows, ['incident', 'escalation', 'migration'])).toEqual([
      { address: 'ops@example.org', kinds: ['incident', 'migration'] },
      { address: 'boss@example.org', kinds: [] },
    ]);
  });
});

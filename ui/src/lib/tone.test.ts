import { describe, expect, it } from 'vitest';
import { tone } from './tone';

describe('tone', () => {
  it('marks what needs attention, what is under way and what is over', () => {
    expect(['critical', 'open', 'failed', 'rolled_back'].map(tone)).toEqual(['bad', 'bad', 'bad', 'bad']);
    expect(['warning', 'acknowledged', 'proposed', 'running', 'retrying'].map(tone)).toEqual(
      ['warn', 'warn', 'warn', 'warn', 'warn'],
    );
    expect(['resolved', 'done', 'completed', 'sent', 'on'].map(tone)).toEqual(['good', 'good', 'good', 'good', 'good']);
    expect(['info', 'pending', 'skipped', 'cancelled', 'something new'].map(tone)).toEqual(
      ['plain', 'plain', 'plain', 'plain', 'plain'],
    );
  });
});

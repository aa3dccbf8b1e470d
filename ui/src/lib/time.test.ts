import { describe, expect, it } from 'vitest';
import { localToIso, when } from './time';

describe('time', () => {
  it('shows a dash for no time', () => {
    expect(when(null)).toBe('—');
    expect(when(undefined)).toBe('—');
    expect(when('2026-03-01T10:00:00Z')).not.toBe('—');
  });

  it('sends a local input time as an ISO time, and nothing for an empty or bad one', () => {
    expect(localToIso('')).toBeNull();
    expect(localToIso('not a time')).toBeNull();
    const iso = localToIso('2026-03-01T10:30') as string;
    expect(iso).toMatch(/^2026-03-01T\d\d:30:00\.000Z$/);
    expect(new Date(iso).getHours()).toBe(10); // read back in the same zone
  });
});

import { describe, expect, it } from 'vitest';
import { layout, WIDTH } from './topology';

describe('topology layout', () => {
  it('places every worker inside the drawing, without overlaps, for 3 and for 300', () => {
    for (const count of [0, 1, 3, 40, 300]) {
      const placed = layout(count);
      expect(placed.workers).toHaveLength(count);
      const seen = new Set<string>();
      for (const { x, y } of placed.workers) {
        expect(x).toBeGreaterThan(0);
        expect(x).toBeLessThan(WIDTH);
        expect(y).toBeLessThan(placed.height);
        seen.add(`${Math.round(x)},${Math.round(y)}`);
      }
      expect(seen.size).toBe(count);
      expect(placed.radius * 2).toBeLessThan(placed.cell);
    }
  });

  it('draws names and links only while they stay readable', () => {
    expect(layout(3).detailed).toBe(true);
    expect(layout(300).detailed).toBe(false);
  });
});

// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { formatTime } from '../../web/src/roll-view.js';

describe('formatTime', () => {
  const now = new Date(2026, 11, 2, 20, 0, 0);

  it('shows only the time for a roll made today', () => {
    const text = formatTime(new Date(2026, 11, 2, 19, 30, 5).toISOString(), now) ?? '';
    expect(text).toContain('30');
    expect(text).not.toContain('2026');
  });

  it('adds the date for older rolls, and refuses a bad timestamp', () => {
    expect(formatTime(new Date(2026, 10, 28, 19, 30, 5).toISOString(), now)).toContain('2026');
    expect(formatTime('not a date', now)).toBeNull();
  });
});

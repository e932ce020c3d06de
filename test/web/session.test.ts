import { describe, expect, it } from 'vitest';
import { asPasswordPolicy } from '../../web/src/session.js';

describe('asPasswordPolicy', () => {
  it('reads the server’s answer', () => {
    expect(asPasswordPolicy({ min_length: 15, max_length: 1024 })).toEqual({
      min_length: 15,
      max_length: 1024,
    });
  });

  it.each([
    null,
    'policy',
    {},
    { min_length: '15', max_length: 1024 },
    { min_length: 15.5, max_length: 1024 },
    { min_length: 0, max_length: 1024 },
    { min_length: 30, max_length: 20 },
  ])('refuses %j rather than guess a policy', (data) => {
    expect(asPasswordPolicy(data)).toBeUndefined();
  });
});

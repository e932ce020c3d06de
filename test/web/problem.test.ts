import { describe, expect, it } from 'vitest';
import {
  fieldErrorText,
  formatWait,
  parseRetryAfter,
  problemMessage,
  toProblem,
} from '../../web/src/problem.js';

describe('toProblem', () => {
  it('keeps detail, code, field errors and the notation position', () => {
    const problem = toProblem(422, {
      type: 'about:blank',
      title: 'Unprocessable Content',
      status: 422,
      detail: 'Expected a number of sides',
      code: 'INVALID_DICE_NOTATION',
      position: 2,
      errors: [{ field: 'notation', message: 'is invalid' }, { field: 3 }],
    });
    expect(problem).toEqual({
      status: 422,
      code: 'INVALID_DICE_NOTATION',
      detail: 'Expected a number of sides',
      errors: [{ field: 'notation', message: 'is invalid' }],
      position: 2,
    });
  });

  it('falls back to a sentence for the status when the body is not a problem', () => {
    expect(toProblem(502, undefined).detail).toMatch(/server had a problem/);
    expect(toProblem(404, 'nope')).toMatchObject({ code: 'HTTP_404', detail: 'Not found.' });
  });
});

describe('problemMessage', () => {
  it('spells a leading wire field name as words and drops the pointer to /docs (web review W4)', () => {
    const message = (detail: string) => problemMessage(toProblem(400, { detail }));
    expect(message('full_name must be at most 200 characters')).toBe(
      'Full name must be at most 200 characters.',
    );
    expect(message('current_password is missing or wrong.')).toBe('Current password is missing or wrong.');
    expect(message('code is not in the expected form (see its description at /docs)')).toBe(
      'Code is not in the expected form.',
    );
    // A sentence that does not start with a field name is left as it is.
    expect(message('This account has a second factor: send otp too.')).toBe(
      'This account has a second factor: send otp too.',
    );
  });

  it('adds the wait from Retry-After to a 429', () => {
    const problem = toProblem(
      429,
      { detail: 'Too many failed logins; try again later.', code: 'TOO_MANY_LOGIN_ATTEMPTS' },
      '120',
    );
    expect(problemMessage(problem)).toBe('Too many failed logins. Try again in 2 minutes.');
    const bare = toProblem(429, { detail: 'Try again later.', code: 'TOO_MANY_REQUESTS' }, '5');
    expect(problemMessage(bare)).toBe('Too many attempts. Try again in 5 seconds.');
  });

  it('is the detail as a sentence otherwise', () => {
    expect(problemMessage(toProblem(404, { detail: 'Room not found', code: 'ROOM_NOT_FOUND' }))).toBe(
      'Room not found.',
    );
    expect(problemMessage(toProblem(400, { detail: 'email is not a valid address' }))).toBe(
      'Email is not a valid address.',
    );
    expect(problemMessage(toProblem(409, { detail: 'Taken!' }))).toBe('Taken!');
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('30', now)).toBe(30);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:01:30 GMT', now)).toBe(90);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('formatWait', () => {
  it('speaks in seconds below a minute, then minutes rounded up', () => {
    expect(formatWait(1)).toBe('1 second');
    expect(formatWait(45)).toBe('45 seconds');
    expect(formatWait(60)).toBe('1 minute');
    expect(formatWait(61)).toBe('2 minutes');
  });
});

describe('fieldErrorText', () => {
  it('prefixes fragments with the label and leaves sentences alone', () => {
    expect(fieldErrorText('Email', 'is required')).toBe('Email is required');
    expect(fieldErrorText('Your name', 'Player name must not be empty')).toBe(
      'Player name must not be empty',
    );
  });
});

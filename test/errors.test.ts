import { describe, expect, it } from 'vitest';
import { oauthErrorText } from '../src/errors.js';

describe('oauthErrorText', () => {
  it('keeps RFC 6749’s error_description characters and maps or replaces the rest', () => {
    expect(oauthErrorText('The code is invalid, expired or already used.')).toBe(
      'The code is invalid, expired or already used.',
    );
    expect(oauthErrorText('The app’s “grant” — é"\\x…')).toBe("The app's 'grant' - ?'?x...");
    expect(oauthErrorText('a\nb\u0000c')).toBe('a?b?c');
  });
});

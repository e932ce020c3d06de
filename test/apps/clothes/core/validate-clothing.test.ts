import { describe, expect, it } from 'vitest';
import {
  validateClothingPatch,
  validateNewClothing,
} from '../../../../src/apps/clothes/core/validate-clothing.js';
import { GatehouseError } from '../../../../src/errors.js';

const VALID = {
  name: 'Linen shirt',
  photoUrl: 'https://img.example.test/shirt.jpg',
  size: 'm',
  color: 'white',
};

function fieldErrorsOf(run: () => unknown) {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GatehouseError);
    expect((error as GatehouseError).code).toBe('VALIDATION_FAILED');
    return (error as GatehouseError).errors?.map((e) => e.field);
  }
  throw new Error('expected a validation error');
}

describe('validateNewClothing', () => {
  it('normalizes the name and the URL', () => {
    expect(
      validateNewClothing({
        ...VALID,
        name: '  Cafe\u0301  shirt ',
        photoUrl: 'HTTPS://IMG.Example.test/a b.jpg',
      }),
    ).toEqual({ ...VALID, name: 'Caf\u00E9 shirt', photoUrl: 'https://img.example.test/a%20b.jpg' });
  });

  it('names every missing or bad field by its API name', () => {
    expect(
      fieldErrorsOf(() => validateNewClothing({ name: ' ', photoUrl: 'nope', size: 'xxxl', color: 'teal' })),
    ).toEqual(['name', 'photo_url', 'size', 'color']);
    expect(fieldErrorsOf(() => validateNewClothing({ ...VALID, photoUrl: undefined } as never))).toEqual([
      'photo_url',
    ]);
  });

  it('counts name length in characters, after normalization', () => {
    expect(validateNewClothing({ ...VALID, name: '👕'.repeat(120) }).name).toHaveLength(240);
    expect(fieldErrorsOf(() => validateNewClothing({ ...VALID, name: 'a'.repeat(121) }))).toEqual(['name']);
    // NFC composes e + U+0301 into one é: 120 of them fit although they arrive as 240 code points.
    expect(validateNewClothing({ ...VALID, name: 'e\u0301'.repeat(120) }).name).toBe('\u00E9'.repeat(120));
    expect(fieldErrorsOf(() => validateNewClothing({ ...VALID, name: 'tab\there' }))).toEqual(['name']);
  });

  it.each([
    ['a script URL', 'javascript:alert(1)'],
    ['a data URL', 'data:image/png;base64,AAAA'],
    ['a file URL', 'file:///etc/passwd'],
    ['another scheme', 'ftp://example.test/a.jpg'],
    ['a relative URL', '/relative/path.jpg'],
    ['a URL with credentials', 'https://user:secret@example.test/a.jpg'],
    ['a URL over 2048 characters', `https://example.test/${'a'.repeat(2048)}`],
  ])('refuses %s as photo_url', (_label, photoUrl) => {
    expect(fieldErrorsOf(() => validateNewClothing({ ...VALID, photoUrl }))).toEqual(['photo_url']);
  });
});

describe('validateClothingPatch', () => {
  it('checks only the fields present', () => {
    expect(validateClothingPatch({ color: 'navy' })).toEqual({ color: 'navy' });
    expect(validateClothingPatch({})).toEqual({});
    expect(fieldErrorsOf(() => validateClothingPatch({ size: 'XL' }))).toEqual(['size']);
  });
});

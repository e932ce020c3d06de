import {
  describeDisplayTextRejection,
  type FieldError,
  GatehouseError,
  normalizeDisplayText,
} from '../../../index.js';
import { COLORS, type Color, isColor, isSize, SIZES, type Size } from './clothing-attributes.js';

/** Longest accepted `name`, in characters (code points) after normalization. */
export const NAME_MAX_LENGTH = 120;

/** Longest accepted `photo_url`, after URL normalization. */
export const PHOTO_URL_MAX_LENGTH = 2048;

/** Clothing fields as a caller sends them, before validation. */
export interface ClothingInput {
  name: string;
  photoUrl: string;
  size: string;
  color: string;
}

/** Clothing fields after validation and normalization. */
export interface ClothingFields {
  name: string;
  photoUrl: string;
  size: Size;
  color: Color;
}

type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

function checkName(raw: string): Checked<string> {
  // The shared display-text rule: a clothes name is shown to every shopper.
  const result = normalizeDisplayText(raw, NAME_MAX_LENGTH);
  return result.ok
    ? { ok: true, value: result.text }
    : { ok: false, message: describeDisplayTextRejection(result.reason, NAME_MAX_LENGTH) };
}

function checkPhotoUrl(raw: string): Checked<string> {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return { ok: false, message: 'must be an absolute http(s) URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    // Anything else (javascript:, data:, file:) is a script or local-file vector once rendered.
    return { ok: false, message: 'must be an absolute http(s) URL' };
  }
  if (url.username !== '' || url.password !== '')
    return { ok: false, message: 'must not contain credentials' };
  // The normalized form is what is stored and shown, so it is the one that must fit.
  if (url.href.length > PHOTO_URL_MAX_LENGTH) {
    return { ok: false, message: `must be at most ${PHOTO_URL_MAX_LENGTH} characters` };
  }
  return { ok: true, value: url.href };
}

function checkSize(raw: string): Checked<Size> {
  return isSize(raw)
    ? { ok: true, value: raw }
    : { ok: false, message: `must be one of ${SIZES.join(', ')}` };
}

function checkColor(raw: string): Checked<Color> {
  return isColor(raw)
    ? { ok: true, value: raw }
    : { ok: false, message: `must be one of ${COLORS.join(', ')}` };
}

const FIELD_NAMES: Record<keyof ClothingFields, string> = {
  name: 'name',
  photoUrl: 'photo_url',
  size: 'size',
  color: 'color',
};

function validate(input: Partial<ClothingInput>, requireAll: boolean): Partial<ClothingFields> {
  const errors: FieldError[] = [];
  const result: Partial<ClothingFields> = {};
  const take = <K extends keyof ClothingFields>(
    key: K,
    check: (raw: string) => Checked<ClothingFields[K]>,
  ) => {
    const raw = input[key];
    if (raw === undefined) {
      if (requireAll) errors.push({ field: FIELD_NAMES[key], message: 'is required' });
      return;
    }
    const checked = check(raw);
    if (checked.ok) result[key] = checked.value;
    else errors.push({ field: FIELD_NAMES[key], message: checked.message });
  };
  take('name', checkName);
  take('photoUrl', checkPhotoUrl);
  take('size', checkSize);
  take('color', checkColor);
  if (errors.length > 0) {
    const detail = errors.map((error) => `${error.field} ${error.message}`).join('; ');
    throw new GatehouseError('VALIDATION_FAILED', detail, { errors });
  }
  return result;
}

/**
 * Validates and normalizes the fields present in `input`: names follow the shared display-text rule,
 * photo URLs parsed and kept in their normalized form. Throws VALIDATION_FAILED naming every bad
 * field by its API name (`photo_url`, not `photoUrl`).
 */
export function validateClothingPatch(input: Partial<ClothingInput>): Partial<ClothingFields> {
  return validate(input, false);
}

/** Validates a complete set of fields for a new item; a missing one is a field error too. */
export function validateNewClothing(input: ClothingInput): ClothingFields {
  return validate(input, true) as ClothingFields;
}

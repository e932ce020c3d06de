/** Garment sizes, smallest first. */
export const SIZES = ['xs', 's', 'm', 'l', 'xl', 'xxl'] as const;

/** One of {@link SIZES}. */
export type Size = (typeof SIZES)[number];

/**
 * The fixed colour palette. Migration 002 freezes the same list in a CHECK constraint, so adding
 * a colour takes a migration as well as an edit here.
 */
export const COLORS = [
  'black',
  'white',
  'grey',
  'beige',
  'brown',
  'red',
  'orange',
  'yellow',
  'green',
  'blue',
  'navy',
  'purple',
  'pink',
] as const;

/** One of {@link COLORS}. */
export type Color = (typeof COLORS)[number];

/** True when `value` is one of {@link SIZES}. */
export function isSize(value: unknown): value is Size {
  return typeof value === 'string' && (SIZES as readonly string[]).includes(value);
}

/** True when `value` is one of {@link COLORS}. */
export function isColor(value: unknown): value is Color {
  return typeof value === 'string' && (COLORS as readonly string[]).includes(value);
}

/**
 * The password length the server asks by default, checked in the browser only to answer sooner;
 * the server's answer is what counts when an operator changes `PASSWORD_MIN_LENGTH`.
 */
import { type Problem, toProblem } from './problem.js';

/** Shortest password the server accepts by default (`PASSWORD_MIN_LENGTH`, after NFKC). */
export const PASSWORD_MIN_LENGTH = 15;

/** A `WEAK_PASSWORD` problem when `password` is shorter than {@link PASSWORD_MIN_LENGTH}. */
export function passwordTooShort(password: string): Problem | undefined {
  if ([...password].length >= PASSWORD_MIN_LENGTH) return undefined;
  return toProblem(400, {
    detail: `The password must be at least ${PASSWORD_MIN_LENGTH} characters long.`,
    code: 'WEAK_PASSWORD',
  });
}

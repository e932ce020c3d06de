import { GatehouseError } from '../errors.js';

/**
 * Whether `error` is the verifier's refusal of an address that sent too many failing hints. The
 * callers treat it as a hint that did not verify (a logout ignores it, RP-Initiated Logout §4; an
 * authorization request is answered `temporarily_unavailable` at its redirect URI, RFC 6749
 * §4.1.2.1), never as a 429 page: the address may be a NAT that others share, whose valid hints
 * would otherwise strand their logouts and silent sign-ins on a JSON error.
 */
export function isHintThrottled(error: unknown): boolean {
  return error instanceof GatehouseError && error.code === 'TOO_MANY_REQUESTS';
}

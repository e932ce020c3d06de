/**
 * What a login refused for its credentials says under REQUIRE_VERIFIED_EMAIL, for a wrong password
 * and for an unverified account's right one alike: whoever signs up with someone's address chooses
 * the new account's password, so "confirm your address first" told them the address had had no
 * account, which the sign-up's 202 exists to hide (OWASP Authentication Cheat Sheet: generic
 * login errors). Without the setting, the plain "invalid email or password" is said.
 */
export const INVALID_OR_UNCONFIRMED_LOGIN =
  'Invalid email or password, or the address is not confirmed yet: follow the link mailed to it.';

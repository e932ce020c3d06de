/**
 * `token` (base64url) with one character changed that always changes the decoded bytes: the fifth
 * from the end carries six data bits. Not the last characters: replacing them with fixed ones
 * (`…AA`) left the token unchanged whenever it already ended that way, and the last character's
 * unused low bits can decode to the same bytes, so such a "forgery" verified now and then
 * (lifecycle-routes, fresh-clone CI of ffb3feb: one mail too many).
 */
export function tampered(token: string): string {
  const at = token.length - 5;
  const replacement = token[at] === 'A' ? 'B' : 'A';
  return `${token.slice(0, at)}${replacement}${token.slice(at + 1)}`;
}

import { isIPv4, isIPv6 } from 'node:net';

/**
 * The key under which per-address limits count a client: an IPv4 address as it is, an IPv6
 * address by its /64 prefix.
 *
 * Why: one IPv6 customer (a home line, a VPS) routinely gets a whole /64, 2^64 addresses, and can
 * send every request from a new one, so a limit keyed on the full IPv6 address limits nothing
 * (RFC 6177 §2, RFC 7421 §1: /64 is the smallest prefix assigned to a site; OWASP Credential
 * Stuffing Prevention: rate-limit by network, not by single address). IPv4-mapped IPv6 addresses
 * (`::ffff:192.0.2.1`, what a dual-stack socket reports for IPv4 clients) count as the IPv4
 * address, so one client is one bucket whichever way the socket shows it. Anything else
 * (a unix socket, an unparsable value) is returned unchanged.
 *
 * `ipv6Prefix` 48 gives the network a single site is usually assigned (RFC 6177 §3), for counts
 * where one customer must weigh as one however many /64s it routes (the login breaker, red-team F9).
 */
export function addressBucket(ip: string, ipv6Prefix: 48 | 64 = 64): string {
  const address = ip.split('%', 1)[0] ?? ip;
  if (isIPv4(address) || !isIPv6(address)) return address;
  const groups = ipv6Groups(address);
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  return `${groups
    .slice(0, ipv6Prefix / 16)
    .map((group) => group.toString(16))
    .join(':')}::/${ipv6Prefix}`;
}

/** The eight 16-bit groups of a valid IPv6 literal (`::` expanded, a dotted IPv4 tail split in two). */
function ipv6Groups(address: string): number[] {
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((piece) => {
          if (!piece.includes('.')) return [Number.parseInt(piece, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = piece.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = address.split('::');
  if (tail === undefined) return parse(head);
  const left = parse(head);
  const right = parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

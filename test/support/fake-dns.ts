import dns, { type LookupAddress } from 'node:dns';
import { vi } from 'vitest';

/**
 * Makes `dns.lookup` answer `names` (host name → its addresses) and pass every other name to the
 * real resolver, until the returned function restores it: a public-looking name that resolves to
 * a loopback server, as an attacker's DNS would answer, without a DNS server.
 */
export function resolveNames(names: Record<string, readonly string[]>): () => void {
  const real = dns.lookup;
  const fake = (hostname: string, options: unknown, callback: unknown) => {
    const answer = names[hostname];
    if (answer === undefined) return Reflect.apply(real, dns, [hostname, options, callback]);
    const addresses: LookupAddress[] = answer.map((address) => ({
      address,
      family: address.includes(':') ? 6 : 4,
    }));
    const all =
      typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    const done = callback as (error: null, address: string | LookupAddress[], family?: number) => void;
    const [first] = addresses;
    process.nextTick(() =>
      all || first === undefined ? done(null, addresses) : done(null, first.address, first.family),
    );
  };
  const spy = vi.spyOn(dns, 'lookup').mockImplementation(fake as typeof dns.lookup);
  return () => spy.mockRestore();
}

import { BlockList, isIP } from 'node:net';
import { type Static, Type } from 'typebox';

/**
 * Signature algorithms an external issuer may be allowed: asymmetric ones only. `none` is never
 * acceptable, and an HMAC algorithm would let anyone holding the issuer's *public* key mint
 * tokens (the RFC 8725 §2.1 / §3.1 algorithm-confusion attack), so neither can even be configured.
 */
export const EXTERNAL_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

/** A signature algorithm an external issuer may be allowed: asymmetric only (no `none`, no `HS*`). */
export type ExternalAlgorithm = (typeof EXTERNAL_ALGORITHMS)[number];

/** The algorithms allowed when an issuer names none: what Keycloak, Auth0, Entra ID and Okta sign with. */
export const DEFAULT_EXTERNAL_ALGORITHMS: readonly ExternalAlgorithm[] = ['RS256', 'PS256', 'ES256', 'EdDSA'];

/** Most issuers one installation trusts: each holds a key set in memory. */
export const MAX_EXTERNAL_ISSUERS = 20;

/**
 * True for an absolute `https` URL, or `http` on a loopback host (a provider on this machine, as in
 * tests and development): key sets must not travel over plain HTTP across a network. No fragment,
 * no user-info.
 */
export function isTrustedHttpUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.hash !== '' || url.username !== '' || url.password !== '') return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
}

/**
 * IPv4 ranges that are not the public internet (RFC 6890's special-purpose registry, less the
 * documentation ranges): "this network", private, CGNAT (some clouds' metadata services answer
 * there), loopback, link-local (169.254.169.254, the usual metadata service), IETF protocol
 * assignments, benchmarking, multicast and reserved (with the broadcast address).
 */
const INTERNAL_IPV4 = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const;

/** The 6to4 prefix (RFC 3056 §2) that carries the IPv4 network `network`/`prefix`. */
function sixToFour(network: string, prefix: number): [string, number] {
  const [a = 0, b = 0, c = 0, d = 0] = network.split('.').map(Number);
  const hex = (high: number, low: number) => ((high << 8) | low).toString(16);
  return [`2002:${hex(a, b)}:${hex(c, d)}::`, 16 + prefix];
}

/**
 * Address ranges that are not the public internet: {@link INTERNAL_IPV4}, also inside the IPv6
 * forms that carry an IPv4 address (BlockList matches IPv4-mapped `::ffff:a.b.c.d` against the
 * IPv4 rules itself; IPv4-compatible `::a.b.c.d`, -translated `::ffff:0:a.b.c.d` and 6to4
 * `2002:aabb:ccdd::` are added), and IPv6 loopback, unspecified, unique-local, link-local,
 * site-local, multicast, NAT64 (well-known and local-use, RFC 8215) and Teredo (RFC 4380: it
 * tunnels to an IPv4 address it embeds, so its destination cannot be judged from the prefix).
 */
const INTERNAL = (() => {
  const list = new BlockList();
  for (const [network, prefix] of INTERNAL_IPV4) {
    list.addSubnet(network, prefix, 'ipv4');
    list.addSubnet(`::${network}`, 96 + prefix, 'ipv6');
    list.addSubnet(`::ffff:0:${network}`, 96 + prefix, 'ipv6');
    list.addSubnet(...sixToFour(network, prefix), 'ipv6');
  }
  for (const [network, prefix] of [
    ['::', 128],
    ['::1', 128],
    ['fc00::', 7],
    ['fe80::', 10],
    ['fec0::', 10],
    ['ff00::', 8],
    ['64:ff9b::', 96],
    ['64:ff9b:1::', 48],
    ['2001::', 32],
  ] as const)
    list.addSubnet(network, prefix, 'ipv6');
  return list;
})();

/**
 * True for a host that is not on the public internet: `localhost` (and names under it), and IP
 * literals in {@link INTERNAL}'s ranges. Takes a URL's `hostname` (IPv6 in brackets; one trailing
 * dot, which resolvers ignore, is ignored too). Names are not resolved.
 */
export function isInternalHost(hostname: string): boolean {
  const host = hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const family = isIP(host);
  return family !== 0 && INTERNAL.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

const TrustedUrl = Type.Refine(
  Type.String({ maxLength: 2000 }),
  isTrustedHttpUrl,
  () => 'must be an https URL (http only on 127.0.0.1, [::1] or localhost), without fragment or user-info',
);

/** An RFC 7519 claim name: printable, no spaces. */
const ClaimName = Type.String({ pattern: '^[\\x21-\\x7e]{1,100}$' });

/** One external token issuer (see `EXTERNAL_ISSUERS`). */
export const ExternalIssuerSchema = Type.Object(
  {
    /** The `iss` its tokens carry, compared exactly (Auth0's ends with `/`). Its metadata is read from it. */
    issuer: TrustedUrl,
    /** The `aud` a token must carry (one of them, when a list): this API's identifier at that provider. */
    audience: Type.Union([
      Type.String({ minLength: 1, maxLength: 2000 }),
      Type.Array(Type.String({ minLength: 1, maxLength: 2000 }), { minItems: 1, maxItems: 10 }),
    ]),
    /**
     * The JOSE `typ` header a token must carry, compared case-insensitively without `application/`
     * (RFC 7515 §4.1.9). RFC 9068 access tokens say `at+jwt`; Keycloak, Auth0 and Entra ID say `JWT`.
     * @default 'at+jwt'
     */
    typ: Type.Optional(
      Type.Union([
        Type.String({ minLength: 1, maxLength: 100 }),
        Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 5 }),
      ]),
    ),
    /** Accepted signature algorithms, asymmetric only. @default ['RS256','PS256','ES256','EdDSA'] */
    algorithms: Type.Optional(
      Type.Array(Type.Enum([...EXTERNAL_ALGORITHMS]), { minItems: 1, maxItems: EXTERNAL_ALGORITHMS.length }),
    ),
    /**
     * The claim the token's scopes are read from: a space-separated string (`scope`, RFC 9068) or an
     * array of strings (`scp` for Okta and Entra ID, `permissions` for Auth0 RBAC). @default 'scope'
     */
    scopeClaim: Type.Optional(ClaimName),
    /** The key set's URL, when the provider publishes no discovery document. @default from discovery */
    jwksUri: Type.Optional(TrustedUrl),
    /**
     * The issuer is on your internal network under a DNS name (a Keycloak at
     * `https://sso.corp.example`): its metadata and keys may then be fetched from internal
     * addresses (loopback, private, link-local…), and its metadata may name a `jwks_uri` on one.
     * Otherwise a connection that would reach an internal address is refused, however the name
     * resolves (OWASP SSRF Prevention Cheat Sheet), unless the issuer's URL names an internal
     * address itself. @default false
     */
    allowInternalAddresses: Type.Optional(Type.Boolean()),
    /** Seconds of clock difference tolerated on `exp` and `nbf`. @default 30 */
    clockTolerance: Type.Optional(Type.Number({ minimum: 0, maximum: 300 })),
    /**
     * Seconds a fetched key set is used before it is fetched again (then keys removed there stop
     * working; while fetching fails, the set serves `jwksMaxStale` longer at most). @default 600
     */
    jwksMaxAge: Type.Optional(Type.Number({ minimum: 1, maximum: 86_400 })),
    /**
     * Seconds past `jwksMaxAge` the last fetched key set still serves while fetching a new one
     * fails; after that this issuer's tokens get 503 until a fetch succeeds, so a key the provider
     * removed never outlives a failing key set endpoint by more than this. @default 3600
     */
    jwksMaxStale: Type.Optional(Type.Number({ minimum: 0, maximum: 604_800 })),
    /**
     * Seconds between two fetches of the key set at least, whatever tokens arrive: an unknown `kid`
     * (a rotation) triggers a fetch only this long after the last one, so a flood of random `kid`s
     * cannot make us hammer the provider. @default 30
     */
    jwksCooldown: Type.Optional(Type.Number({ minimum: 0.01, maximum: 3600 })),
  },
  { additionalProperties: false },
);

/** One external issuer's settings, as configured. */
export type ExternalIssuer = Static<typeof ExternalIssuerSchema>;

/** True when no two entries of `issuers` name the same issuer. */
function issuersAreDistinct(issuers: readonly ExternalIssuer[]): boolean {
  return new Set(issuers.map((entry) => entry.issuer)).size === issuers.length;
}

/** The `EXTERNAL_ISSUERS` setting: distinct issuers, at most {@link MAX_EXTERNAL_ISSUERS}. */
export const ExternalIssuersSchema = Type.Refine(
  Type.Array(ExternalIssuerSchema, { maxItems: MAX_EXTERNAL_ISSUERS }),
  issuersAreDistinct,
  () => 'must name each issuer once',
);

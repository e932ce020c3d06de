import { decodeProtectedHeader, type JWK } from 'jose';
import type { Keyring } from './keyring.js';
import type { AsymmetricAlgorithm } from './signing-key-material.js';

/**
 * The one algorithm every OpenID provider must offer for ID tokens: OpenID Connect Core §15.1 says
 * an OP MUST support RS256, and Discovery §3 that `id_token_signing_alg_values_supported` MUST
 * list it. Relying parties that accept nothing else exist (Kubernetes' `--oidc-signing-algs`
 * defaults to it), so a client may ask for it whatever JWT_ALG is.
 */
export const MANDATORY_ID_TOKEN_ALGORITHM = 'RS256' satisfies AsymmetricAlgorithm;

/**
 * The keyrings that sign ID tokens, one per algorithm a client may choose (its
 * `id_token_signed_response_alg`, OpenID Connect Dynamic Client Registration §2), and the JWK Set
 * that publishes them all.
 */
export interface IdTokenKeys {
  /** The algorithm of a client that chose none: JWT_ALG when asymmetric, else ES256. */
  readonly defaultAlgorithm: AsymmetricAlgorithm;
  /** Every algorithm a client may choose, the default first (discovery lists these). */
  readonly algorithms: readonly AsymmetricAlgorithm[];
  /**
   * The keyring of `algorithm` (the default when omitted), loaded or created on first use; a
   * failure (the database unreachable) is not remembered, so the next call tries again.
   */
  keyring(algorithm?: AsymmetricAlgorithm): Promise<Keyring>;
  /**
   * The public keys of every algorithm, as one JWK Set. The default keyring's failure propagates;
   * another's leaves its keys out (and is reported through `onWarning`), so an outage while that
   * keyring is first created cannot take away the keys that verify access tokens.
   */
  jwks(): Promise<{ keys: JWK[] }>;
  /**
   * The keyring that can verify `token` (an `id_token_hint`): the one of the algorithm its header
   * names, when that is one of {@link algorithms}; undefined for a token that names none of them
   * or has no readable header. Rejects only when that keyring cannot be loaded (the database).
   */
  keyringFor(token: string): Promise<Keyring | undefined>;
  /** Loads now every keyring whose algorithm has keys stored (so discovery and JWKS need no database later). */
  preload(): Promise<void>;
  /** Stops the keyrings this made (not the access-token keyring it was given). */
  close(): void;
}

/** Options of {@link createIdTokenKeys}. */
export interface IdTokenKeysOptions {
  /** The access-token keyring: it signs ID tokens too when its algorithm is asymmetric. */
  accessKeyring: Keyring;
  /** Makes the keyring of `algorithm` over the shared `signing_keys` table (`createKeyring`). */
  createKeyring(algorithm: AsymmetricAlgorithm): Promise<Keyring>;
  /** Whether the database holds keys of `algorithm` already (an installation that issued such tokens). */
  hasStoredKeys(algorithm: AsymmetricAlgorithm): Promise<boolean>;
  /** Told when a keyring other than the default could not be loaded for the JWK Set. */
  onWarning?: (message: string, detail?: Record<string, unknown>) => void;
}

/**
 * Creates the {@link IdTokenKeys}. ID tokens are verified by other parties, so they need published
 * (asymmetric) keys: the access-token keyring's when JWT_ALG is asymmetric, else ES256 keys of
 * their own in the same `signing_keys` table; plus RS256 keys (see
 * {@link MANDATORY_ID_TOKEN_ALGORITHM}) unless JWT_ALG is RS256 already. Keyrings other than the
 * access-token one are made on first use, so most HS256 installations, which never issue ID
 * tokens, never create any.
 */
export function createIdTokenKeys(options: IdTokenKeysOptions): IdTokenKeys {
  const { accessKeyring } = options;
  const access = accessKeyring.algorithm === 'HS256' ? undefined : accessKeyring;
  const defaultAlgorithm: AsymmetricAlgorithm =
    access === undefined ? 'ES256' : (access.algorithm as AsymmetricAlgorithm);
  const algorithms: AsymmetricAlgorithm[] =
    defaultAlgorithm === MANDATORY_ID_TOKEN_ALGORITHM
      ? [defaultAlgorithm]
      : [defaultAlgorithm, MANDATORY_ID_TOKEN_ALGORITHM];
  const made = new Map<AsymmetricAlgorithm, Promise<Keyring>>();

  const keyring = (algorithm: AsymmetricAlgorithm = defaultAlgorithm): Promise<Keyring> => {
    if (!algorithms.includes(algorithm)) {
      return Promise.reject(new Error(`${algorithm} is not an ID-token algorithm here`));
    }
    if (access !== undefined && algorithm === access.algorithm) return Promise.resolve(access);
    let pending = made.get(algorithm);
    if (pending === undefined) {
      pending = options.createKeyring(algorithm).catch((error: unknown) => {
        made.delete(algorithm); // a failed attempt (database down) is retried by the next call
        throw error;
      });
      made.set(algorithm, pending);
    }
    return pending;
  };

  return {
    defaultAlgorithm,
    algorithms,
    keyring,
    async jwks() {
      const first = (await keyring(defaultAlgorithm)).jwks().keys;
      const others = await Promise.all(
        algorithms
          .filter((algorithm) => algorithm !== defaultAlgorithm)
          .map((algorithm) =>
            keyring(algorithm).then(
              (ring) => ring.jwks().keys,
              (error: unknown) => {
                options.onWarning?.(
                  'ID-token keys left out of the JWK Set; trying again at the next request',
                  {
                    algorithm,
                    error: error instanceof Error ? error.message : String(error),
                  },
                );
                return [];
              },
            ),
          ),
      );
      return { keys: [...first, ...others.flat()] };
    },
    async keyringFor(token) {
      // Read unverified only to choose the keyring; that keyring's verify() accepts its own
      // algorithm alone (RFC 8725 §3.1) and checks everything else.
      let alg: unknown;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        return undefined;
      }
      const algorithm = algorithms.find((candidate) => candidate === alg);
      return algorithm === undefined ? undefined : keyring(algorithm);
    },
    async preload() {
      for (const algorithm of algorithms) {
        if (algorithm === access?.algorithm) continue;
        if (await options.hasStoredKeys(algorithm)) await keyring(algorithm);
      }
    },
    close() {
      for (const pending of made.values()) {
        void pending.then(
          (ring) => ring.close(),
          () => {},
        );
      }
    },
  };
}

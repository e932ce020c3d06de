import { decodeProtectedHeader, type JWK } from 'jose';
import type { JwtAlgorithm } from '../config/config.js';
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
   * The keyring of `algorithm` (the default when omitted), loaded, or created with fresh keys on
   * first use: for signing (a client's code exchange) and for a client that chose the algorithm
   * (its registration), never for an anonymous request. A failure (the database unreachable) is
   * not remembered, so the next call tries again.
   */
  keyring(algorithm?: AsymmetricAlgorithm): Promise<Keyring>;
  /**
   * The public keys of every algorithm, as one JWK Set, and whether it is complete. The default
   * keyring is loaded or created as by {@link keyring} (with HS256, the ES256 keys of a first
   * discovery) and its failure propagates. Another algorithm's keys are only loaded, once some
   * instance created them (looked up at most every {@link STORED_KEYS_LOOKUP_MS}): an anonymous
   * request never makes an RSA key (red-team 2026-12j review). One that cannot be loaded is left out
   * (`complete: false`, and reported through `onWarning`), so an outage cannot take away the keys
   * that verify access tokens.
   */
  jwks(): Promise<{ keys: JWK[]; complete: boolean }>;
  /**
   * The keyring that can verify `token` (an `id_token_hint`): the one of the algorithm its header
   * names, when that is one of {@link algorithms} and has keys (loaded as {@link jwks} loads them);
   * undefined for a token that names none of them, has no readable header, or names an algorithm
   * no key of ours has. Rejects only when the default keyring cannot be loaded (the database).
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
  /** Epoch ms, for {@link STORED_KEYS_LOOKUP_MS}. @default Date.now */
  clock?: () => number;
}

/** A look-up that failed moments ago, not tried again yet. */
class StillFailing extends Error {}

/**
 * How often an instance looks for keys of a non-default algorithm that another instance may have
 * created since (one query per algorithm at most this often, whatever the JWKS traffic): the most
 * a new RS256 key set can be missing from this instance's JWK Set after another one made it.
 */
export const STORED_KEYS_LOOKUP_MS = 5_000;

/**
 * The ID-token key sets of an installation whose access tokens use `jwtAlgorithm`, the default
 * first: JWT_ALG when asymmetric (ID tokens share its keys), else ES256; then RS256 (see
 * {@link MANDATORY_ID_TOKEN_ALGORITHM}) unless that is the default. Every asymmetric key set that
 * signs is one of these.
 */
export function idTokenAlgorithms(
  jwtAlgorithm: JwtAlgorithm,
): readonly [AsymmetricAlgorithm, ...AsymmetricAlgorithm[]] {
  const defaultAlgorithm: AsymmetricAlgorithm = jwtAlgorithm === 'HS256' ? 'ES256' : jwtAlgorithm;
  return defaultAlgorithm === MANDATORY_ID_TOKEN_ALGORITHM
    ? [defaultAlgorithm]
    : [defaultAlgorithm, MANDATORY_ID_TOKEN_ALGORITHM];
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
  const algorithms = idTokenAlgorithms(accessKeyring.algorithm);
  const [defaultAlgorithm] = algorithms;
  const made = new Map<AsymmetricAlgorithm, Promise<Keyring>>();
  const clock = options.clock ?? Date.now;
  /** When each non-default algorithm was last found without keys, or failed to load. */
  const lookedUp = new Map<AsymmetricAlgorithm, { at: number; failed: boolean }>();
  /** The look-up in flight per algorithm, if any. */
  const lookingUp = new Map<AsymmetricAlgorithm, Promise<Keyring | undefined>>();

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

  /**
   * A non-default algorithm's keyring when it is made, or when keys of it are stored (then loaded,
   * which creates nothing); undefined otherwise. Looked up at most every STORED_KEYS_LOOKUP_MS, and
   * not again that long after a failure either. Rejects when the look-up or the load fails.
   */
  const stored = (algorithm: AsymmetricAlgorithm): Promise<Keyring | undefined> => {
    const pending = made.get(algorithm) ?? lookingUp.get(algorithm);
    if (pending !== undefined) return pending;
    const last = lookedUp.get(algorithm);
    if (last !== undefined && clock() - last.at < STORED_KEYS_LOOKUP_MS) {
      return last.failed ? Promise.reject(new StillFailing()) : Promise.resolve(undefined);
    }
    // One look-up at a time: requests arriving meanwhile share it (a burst is one query).
    const lookup = (async () => {
      try {
        const found = (await options.hasStoredKeys(algorithm)) ? await keyring(algorithm) : undefined;
        lookedUp.set(algorithm, { at: clock(), failed: false });
        return found;
      } catch (error) {
        lookedUp.set(algorithm, { at: clock(), failed: true });
        throw error;
      } finally {
        lookingUp.delete(algorithm);
      }
    })();
    lookingUp.set(algorithm, lookup);
    return lookup;
  };

  return {
    defaultAlgorithm,
    algorithms,
    keyring,
    async jwks() {
      const first = (await keyring(defaultAlgorithm)).jwks().keys;
      let complete = true;
      const others = await Promise.all(
        algorithms
          .filter((algorithm) => algorithm !== defaultAlgorithm)
          .map((algorithm) =>
            stored(algorithm).then(
              (ring) => ring?.jwks().keys ?? [],
              (error: unknown) => {
                complete = false;
                // Told once per attempt, not once per request while it waits to try again.
                if (error instanceof StillFailing) return [];
                options.onWarning?.('ID-token keys left out of the JWK Set; trying again shortly', {
                  algorithm,
                  error: error instanceof Error ? error.message : String(error),
                });
                return [];
              },
            ),
          ),
      );
      return { keys: [...first, ...others.flat()], complete };
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
      if (algorithm === undefined) return undefined;
      if (algorithm === defaultAlgorithm) return keyring(algorithm);
      // Never made for a hint: one naming an algorithm no key of ours has cannot be ours.
      return stored(algorithm).catch(() => undefined);
    },
    async preload() {
      for (const algorithm of algorithms) {
        if (algorithm === access?.algorithm) continue;
        if (await options.hasStoredKeys(algorithm)) await keyring(algorithm);
        else if (algorithm !== defaultAlgorithm) lookedUp.set(algorithm, { at: clock(), failed: false });
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

import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';

/**
 * A software WebAuthn authenticator for `app.inject` tests: ES256 (P-256) credentials, a "none"
 * attestation, discoverable credentials with the user handle, and the flags and signature counter
 * a test chooses. It builds exactly the bytes WebAuthn §6.1 and §6.5 describe, so the server's
 * library checks them as it would a real authenticator's. (The real-browser tests use Chromium's
 * virtual authenticator instead.)
 */

/** Minimal CBOR (RFC 8949) encoder for what an attestation needs: ints, bytes, text, maps. */
type Cbor = number | Uint8Array | string | Map<Cbor, Cbor>;

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 256) return Buffer.from([(major << 5) | 24, length]);
  const bytes = Buffer.alloc(3);
  bytes[0] = (major << 5) | 25;
  bytes.writeUInt16BE(length, 1);
  return bytes;
}

function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const text = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, text.length), text]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), Buffer.from(value)]);
  const parts = [head(5, value.size)];
  for (const [k, v] of value) parts.push(cbor(k), cbor(v));
  return Buffer.concat(parts);
}

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

/** Authenticator data flags (WebAuthn §6.1). */
export const FLAGS = { UP: 0x01, UV: 0x04, AT: 0x40 } as const;

/** One credential the authenticator holds. */
export interface SoftCredential {
  id: Buffer;
  privateKey: KeyObject;
  userHandle: string;
  counter: number;
}

/** Options shaped like the server's JSON options (only the fields used here). */
interface CreationOptions {
  challenge: string;
  rp: { id: string };
  user: { id: string };
}
interface RequestOptions {
  challenge: string;
  rpId: string;
}

/** The answer of a passkey ceremony's options route: the options for the authenticator, and the token to send back. */
export interface PasskeyOptions {
  options: { challenge: string; rp: { id: string }; user: { id: string }; rpId: string };
  passkey_token: string;
}

/** Creates a software authenticator for `origin` (the server's PUBLIC_URL). */
export function createSoftAuthenticator(origin: string) {
  const credentials: SoftCredential[] = [];

  const clientData = (type: string, challenge: string, at: string) =>
    Buffer.from(JSON.stringify({ type, challenge, origin: at, crossOrigin: false }));

  return {
    credentials,
    /** Answers `navigator.credentials.create()` for `options`, as `PublicKeyCredential.toJSON()`. */
    register(
      options: CreationOptions,
      overrides: { origin?: string; flags?: number; again?: SoftCredential } = {},
    ) {
      // `again`: the same credential once more (what excludeCredentials asks authenticators not to do).
      const credential: SoftCredential = overrides.again ?? {
        id: randomBytes(32),
        privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
        userHandle: options.user.id,
        counter: 0,
      };
      if (overrides.again === undefined) credentials.push(credential);
      const { id } = credential;
      const jwk = createPublicKey(credential.privateKey).export({ format: 'jwk' });
      const cose = cbor(
        new Map<Cbor, Cbor>([
          [1, 2],
          [3, -7],
          [-1, 1],
          [-2, Buffer.from(jwk.x ?? '', 'base64url')],
          [-3, Buffer.from(jwk.y ?? '', 'base64url')],
        ]),
      );
      const length = Buffer.alloc(2);
      length.writeUInt16BE(id.length);
      const counter = Buffer.alloc(4);
      const flags = overrides.flags ?? FLAGS.UP | FLAGS.UV | FLAGS.AT;
      const authData = Buffer.concat([
        sha256(options.rp.id),
        Buffer.from([flags]),
        counter,
        Buffer.alloc(16),
        length,
        id,
        cose,
      ]);
      const attestationObject = cbor(
        new Map<Cbor, Cbor>([
          ['fmt', 'none'],
          ['attStmt', new Map()],
          ['authData', authData],
        ]),
      );
      return {
        id: b64url(id),
        rawId: b64url(id),
        type: 'public-key' as const,
        clientExtensionResults: {},
        response: {
          clientDataJSON: b64url(
            clientData('webauthn.create', options.challenge, overrides.origin ?? origin),
          ),
          attestationObject: b64url(attestationObject),
          transports: ['internal'],
        },
      };
    },
    /**
     * Answers `navigator.credentials.get()` with `credential` (default: the first), its counter
     * moved by `counterStep` (0 keeps it: what a cloned authenticator would send).
     */
    authenticate(
      options: RequestOptions,
      overrides: { credential?: SoftCredential; origin?: string; flags?: number; counterStep?: number } = {},
    ) {
      const credential = overrides.credential ?? credentials[0];
      if (credential === undefined) throw new Error('no credential registered');
      credential.counter += overrides.counterStep ?? 1;
      const counter = Buffer.alloc(4);
      counter.writeUInt32BE(credential.counter);
      const authData = Buffer.concat([
        sha256(options.rpId),
        Buffer.from([overrides.flags ?? FLAGS.UP | FLAGS.UV]),
        counter,
      ]);
      const data = clientData('webauthn.get', options.challenge, overrides.origin ?? origin);
      const signature = sign('sha256', Buffer.concat([authData, sha256(data)]), credential.privateKey);
      return {
        id: b64url(credential.id),
        rawId: b64url(credential.id),
        type: 'public-key' as const,
        clientExtensionResults: {},
        response: {
          clientDataJSON: b64url(data),
          authenticatorData: b64url(authData),
          signature: b64url(signature),
          userHandle: credential.userHandle,
        },
      };
    },
  };
}

/**
 * A small signed room log built the way the server builds one (entry text → SHA-256 → Ed25519
 * signature of "dicery-room-log-v1:" + hash), for the web tests of the verify page.
 */
import { webcrypto } from 'node:crypto';
import type { RoomLogDocument, RoomLogKey } from '../../web/src/shared.js';

const subtle = webcrypto.subtle;

function hex(bytes: ArrayBuffer): string {
  return Buffer.from(bytes).toString('hex');
}

/** A log of `count` public rolls in room `room`, signed by a fresh key, and that key. */
export async function signedLog(
  room: string,
  count: number,
): Promise<{ document: RoomLogDocument; key: RoomLogKey }> {
  const pair = (await subtle.generateKey({ name: 'Ed25519' }, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const raw = Buffer.from(await subtle.exportKey('raw', pair.publicKey));
  const key: RoomLogKey = {
    kid: 'log-key-1',
    alg: 'Ed25519',
    public_key: raw.toString('base64url'),
    created_at: '2026-01-01T00:00:00.000Z',
    retired_at: null,
  };
  const entries: RoomLogDocument['entries'] = [];
  let prev = '0'.repeat(64);
  for (let seq = 1; seq <= count; seq++) {
    const entry = JSON.stringify({
      v: 1,
      room,
      seq,
      prev,
      at: `2026-01-01T00:00:${String(seq).padStart(2, '0')}.000Z`,
      player: { id: 'p1', name: 'Pat' },
      visibility: 'room',
      roll: { notation: '1d6', label: null, dice: [seq % 6], total: (seq % 6) + 1 },
    });
    const hash = hex(await subtle.digest('SHA-256', Buffer.from(entry)));
    const signature = Buffer.from(
      await subtle.sign({ name: 'Ed25519' }, pair.privateKey, Buffer.from(`dicery-room-log-v1:${hash}`)),
    ).toString('base64url');
    entries.push({ seq, hash, signature, kid: key.kid, entry });
    prev = hash;
  }
  return { document: { format: 'dicery-room-log/1', room, keys: [key], entries }, key };
}

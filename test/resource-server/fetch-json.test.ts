import { createServer, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ExternalFetchError,
  fetchJson,
  guardedLookup,
  InternalAddressError,
} from '../../src/resource-server/fetch-json.js';
import { resolveNames } from '../support/fake-dns.js';

/** A JSON server on loopback that counts the connections it accepts. */
async function startCountingServer(): Promise<{ port: number; connections(): number; server: Server }> {
  let connections = 0;
  const server = createServer((_request, response) => {
    response.setHeader('content-type', 'application/json');
    response.end('{"reached":true}');
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, connections: () => connections, server };
}

const lookupOf = (hostname: string, all: boolean) =>
  new Promise<{ error: Error | null; address: unknown }>((resolve) => {
    (guardedLookup as LookupFunction)(hostname, { all }, (error, address) => resolve({ error, address }));
  });

describe('fetching an external document refuses internal addresses however they are reached (SSRF)', () => {
  let target: Awaited<ReturnType<typeof startCountingServer>>;
  let restoreDns: () => void = () => {};
  const options = (addresses: 'public' | 'any') => ({
    signal: AbortSignal.timeout(2000),
    maxBytes: 1024,
    addresses,
  });

  beforeAll(async () => {
    target = await startCountingServer();
  });
  afterAll(async () => {
    target.server.closeAllConnections();
    await new Promise<void>((resolve) => target.server.close(() => resolve()));
  });
  afterEach(() => restoreDns());

  it('never connects to a public-looking name that resolves to loopback', async () => {
    restoreDns = resolveNames({ 'idp.attacker.test': ['127.0.0.1'] });
    const before = target.connections();
    const refused = fetchJson(`http://idp.attacker.test:${target.port}/jwks`, options('public'));
    await expect(refused).rejects.toThrow(ExternalFetchError);
    await expect(refused).rejects.toThrow(
      /idp\.attacker\.test resolves to 127\.0\.0\.1, an internal address/,
    );
    expect(target.connections()).toBe(before);
    // The same name, where internal addresses are allowed: the server is there and answers.
    await expect(fetchJson(`http://idp.attacker.test:${target.port}/jwks`, options('any'))).resolves.toEqual({
      reached: true,
    });
    expect(target.connections()).toBe(before + 1);
  });

  it('never connects to a literal internal address either', async () => {
    const before = target.connections();
    await expect(fetchJson(`http://127.0.0.1:${target.port}/jwks`, options('public'))).rejects.toThrow(
      /127\.0\.0\.1.*internal address/,
    );
    await expect(fetchJson(`http://[::ffff:7f00:1]:${target.port}/jwks`, options('public'))).rejects.toThrow(
      /internal address/,
    );
    expect(target.connections()).toBe(before);
  });

  it('refuses a name when any of its addresses is internal (the one Node would try next)', async () => {
    restoreDns = resolveNames({
      'mixed.attacker.test': ['203.0.113.7', '169.254.169.254'],
      'mapped.attacker.test': ['::ffff:10.0.0.1'],
      'sixtofour.attacker.test': ['2002:a9fe:a9fe::1'],
      'public.example.test': ['203.0.113.7', '2001:db8::7'],
    });
    for (const name of ['mixed.attacker.test', 'mapped.attacker.test', 'sixtofour.attacker.test']) {
      for (const all of [true, false]) {
        const { error } = await lookupOf(name, all);
        expect(error, name).toBeInstanceOf(InternalAddressError);
      }
    }
    expect(await lookupOf('public.example.test', true)).toEqual({
      error: null,
      address: [
        { address: '203.0.113.7', family: 4 },
        { address: '2001:db8::7', family: 6 },
      ],
    });
    expect(await lookupOf('public.example.test', false)).toEqual({ error: null, address: '203.0.113.7' });
  });
});

import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildTestServer, createTestClock, type TestClock } from '../../../../src/testing.js';
import { bearerFor, createAccount, type SignedIn, signIn } from '../../../support/accounts.js';

const SHIRT = {
  name: 'Linen shirt',
  photo_url: 'https://img.example.test/shirt.jpg',
  size: 'm',
  color: 'white',
};

describe('clothes routes', () => {
  let app: FastifyInstance;
  let clock: TestClock;

  beforeEach(async () => {
    clock = createTestClock(Date.parse('2025-01-01T00:00:00Z'));
    app = await buildTestServer({}, { clock });
  });

  afterEach(async () => {
    await app.close();
  });

  const send = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, who?: SignedIn, body?: object) =>
    app.inject({
      method,
      url,
      headers: who?.headers ?? {},
      ...(body === undefined ? {} : { payload: body }),
    });

  async function addShirt(admin: SignedIn, overrides: object = {}): Promise<{ id: string }> {
    const response = await send('POST', '/clothes', admin, { ...SHIRT, ...overrides });
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  describe('who may call them', () => {
    it('gives a user 403 on POST /clothes and an admin 201', async () => {
      const bob = await signIn(app, 'user');
      const ann = await signIn(app, 'admin');

      const refused = await send('POST', '/clothes', bob, SHIRT);
      expect(refused.statusCode).toBe(403);
      expect(refused.json().code).toBe('FORBIDDEN');
      expect(refused.headers['content-type']).toContain('application/problem+json');

      const created = await send('POST', '/clothes', ann, SHIRT);
      expect(created.statusCode).toBe(201);
      const item = created.json();
      expect(item).toEqual({
        id: expect.any(String),
        ...SHIRT,
        created_at: '2025-01-01T00:00:00.000Z',
        last_modified_at: '2025-01-01T00:00:00.000Z',
      });
      expect(created.headers.location).toBe(`/clothes/${item.id}`);
    });

    it('gives an admin whose token has only clothes:read 403 insufficient_scope on POST /clothes', async () => {
      const admin = await createAccount(app, 'admin');
      const reader = await bearerFor(app, admin, 'clothes:read');
      const response = await send('POST', '/clothes', reader, SHIRT);
      expect(response.statusCode).toBe(403);
      expect(response.json().code).toBe('INSUFFICIENT_SCOPE');
      expect(response.headers['www-authenticate']).toBe(
        'Bearer realm="gatehouse", error="insufficient_scope", scope="clothes:write"',
      );
      // The same token reads fine.
      expect((await send('GET', '/clothes', reader)).statusCode).toBe(200);
    });

    it('answers 401 without credentials and 403 to a user on PATCH and DELETE', async () => {
      const ann = await signIn(app, 'admin');
      const bob = await signIn(app, 'user');
      const { id } = await addShirt(ann);
      expect((await send('GET', '/clothes')).json().code).toBe('UNAUTHENTICATED');
      expect((await send('GET', `/clothes/${id}`)).statusCode).toBe(401);
      expect((await send('PATCH', `/clothes/${id}`, bob, { color: 'red' })).json().code).toBe('FORBIDDEN');
      expect((await send('DELETE', `/clothes/${id}`, bob)).json().code).toBe('FORBIDDEN');
      // A user token without clothes:read cannot even browse.
      const meOnly = await bearerFor(app, bob.user, 'me');
      expect((await send('GET', '/clothes', meOnly)).json().code).toBe('INSUFFICIENT_SCOPE');
    });
  });

  describe('reading', () => {
    it('lets any signed-in user list with filters and paging, and read one item', async () => {
      const ann = await signIn(app, 'admin');
      const bob = await signIn(app, 'user');
      const red = await addShirt(ann, { color: 'red' });
      clock.advance(1);
      const redLarge = await addShirt(ann, { color: 'red', size: 'l' });
      clock.advance(1);
      await addShirt(ann, { color: 'blue' });

      const all = (await send('GET', '/clothes?limit=2', bob)).json();
      expect(all).toMatchObject({ total: 3, limit: 2, offset: 0 });
      expect(all.items.map((item: { id: string }) => item.id)).toEqual([red.id, redLarge.id]);
      expect((await send('GET', '/clothes?color=red&size=l', bob)).json()).toMatchObject({
        total: 1,
        items: [{ id: redLarge.id }],
      });
      expect((await send('GET', '/clothes?color=red&offset=1', bob)).json().items).toMatchObject([
        { id: redLarge.id },
      ]);

      const one = await send('GET', `/clothes/${red.id}`, bob);
      expect(one.json()).toMatchObject({ id: red.id, color: 'red' });
    });

    it('answers 404 CLOTHING_NOT_FOUND for a missing id on every route', async () => {
      const ann = await signIn(app, 'admin');
      const missing = randomUUID();
      for (const response of [
        await send('GET', `/clothes/${missing}`, ann),
        await send('PATCH', `/clothes/${missing}`, ann, { color: 'red' }),
        await send('DELETE', `/clothes/${missing}`, ann),
      ]) {
        expect(response.statusCode).toBe(404);
        expect(response.json().code).toBe('CLOTHING_NOT_FOUND');
      }
    });

    it('rejects filters outside the lists by name', async () => {
      const bob = await signIn(app, 'user');
      for (const [query, field] of [
        ['size=xxxl', 'size'],
        ['color=chartreuse', 'color'],
        ['sort=name', 'sort'],
      ]) {
        const response = await send('GET', `/clothes?${query}`, bob);
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
      }
    });
  });

  describe('writing', () => {
    it('changes only the given fields and moves last_modified_at', async () => {
      const ann = await signIn(app, 'admin');
      const item = await addShirt(ann);
      clock.advance(60_000);
      const response = await send('PATCH', `/clothes/${item.id}`, ann, {
        color: 'navy',
        name: '  Navy shirt ',
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({
        ...item,
        name: 'Navy shirt',
        color: 'navy',
        last_modified_at: '2025-01-01T00:01:00.000Z',
      });
      expect((await send('GET', `/clothes/${item.id}`, ann)).json()).toEqual(response.json());
    });

    it('deletes an item', async () => {
      const ann = await signIn(app, 'admin');
      const item = await addShirt(ann);
      const response = await send('DELETE', `/clothes/${item.id}`, ann);
      expect(response.statusCode).toBe(204);
      expect((await send('GET', `/clothes/${item.id}`, ann)).statusCode).toBe(404);
    });

    it('names the field in every validation error', async () => {
      const ann = await signIn(app, 'admin');
      const cases: [object, string][] = [
        [{ ...SHIRT, name: '' }, 'name'],
        [{ ...SHIRT, name: 'x'.repeat(121) }, 'name'],
        [{ ...SHIRT, name: '   ' }, 'name'],
        [{ ...SHIRT, photo_url: 'javascript:alert(1)' }, 'photo_url'],
        [{ ...SHIRT, photo_url: '/shirt.jpg' }, 'photo_url'],
        [{ ...SHIRT, photo_url: `https://img.example.test/${'a'.repeat(2030)}` }, 'photo_url'],
        [{ ...SHIRT, size: 'XXXL' }, 'size'],
        [{ ...SHIRT, color: 'chartreuse' }, 'color'],
        [{ ...SHIRT, created_at: '2000-01-01T00:00:00Z' }, 'created_at'],
        [{ name: 'No size', photo_url: SHIRT.photo_url, color: 'red' }, 'size'],
      ];
      for (const [body, field] of cases) {
        const response = await send('POST', '/clothes', ann, body);
        expect(response.statusCode, JSON.stringify(body).slice(0, 80)).toBe(400);
        expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
      }
      const item = await addShirt(ann);
      for (const [body, field] of [
        [{}, 'body'],
        [{ id: 'mine' }, 'id'],
        [{ last_modified_at: '2000-01-01T00:00:00Z' }, 'last_modified_at'],
        [{ photo_url: 'ftp://example.test/a.jpg' }, 'photo_url'],
      ] as const) {
        const response = await send('PATCH', `/clothes/${item.id}`, ann, body);
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
      }
      expect((await send('GET', '/clothes', ann)).json().total).toBe(1);
    });
  });

  it('documents each route’s security requirement and scopes in OpenAPI', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const scopes = (path: string, method: string) => doc.paths[path][method].security[0].OAuth2PasswordBearer;
    expect(scopes('/clothes', 'get')).toEqual(['clothes:read']);
    expect(scopes('/clothes/{id}', 'get')).toEqual(['clothes:read']);
    expect(scopes('/clothes', 'post')).toEqual(['clothes:write']);
    expect(scopes('/clothes/{id}', 'patch')).toEqual(['clothes:write']);
    expect(scopes('/clothes/{id}', 'delete')).toEqual(['clothes:write']);
    expect(doc.paths['/clothes'].post.description).toContain('Requires the admin role');
  });
});

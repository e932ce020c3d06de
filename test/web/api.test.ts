// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { api, forgetCsrfToken, whenUnauthenticated } from '../../web/src/api.js';

type Reply = { status: number; body: unknown };
/** Answers for each `METHOD path`, used in order; a request with none left fails the test. */
let replies: Map<string, Reply[]>;
let requests: string[];

beforeEach(() => {
  replies = new Map([['GET /auth/csrf', [{ status: 200, body: { csrf_token: 'csrf' } }]]]);
  requests = [];
  forgetCsrfToken();
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string, init: RequestInit) => {
      const key = `${init.method} ${path}`;
      requests.push(key);
      const reply = replies.get(key)?.shift();
      if (reply === undefined) throw new Error(`unexpected request ${key}`);
      const type = reply.status < 400 ? 'application/json' : 'application/problem+json';
      return new Response(JSON.stringify(reply.body), {
        status: reply.status,
        headers: { 'Content-Type': type },
      });
    }),
  );
});
afterEach(() => {
  vi.unstubAllGlobals();
});

const ambiguous = { status: 400, body: { status: 400, code: 'AMBIGUOUS_COOKIE', title: 'Bad Request' } };

describe('api after a planted room cookie (red-team G2)', () => {
  it('retries a call refused with AMBIGUOUS_COOKIE once: the refusal had the planted copy dropped', async () => {
    replies.set('POST /rooms/ABC234/rolls', [ambiguous, { status: 201, body: { total: 7 } }]);
    const result = await api<{ total: number }>('POST', '/rooms/ABC234/rolls', { notation: '1d8' });
    expect(result).toMatchObject({ ok: true, status: 201, data: { total: 7 } });
    expect(requests.filter((request) => request === 'POST /rooms/ABC234/rolls')).toHaveLength(2);
  });

  it('retries only once, and never after another 400', async () => {
    replies.set('GET /rooms/ABC234', [ambiguous, ambiguous, ambiguous]);
    const twice = await api('GET', '/rooms/ABC234');
    expect(twice).toMatchObject({ ok: false, problem: { status: 400, code: 'AMBIGUOUS_COOKIE' } });
    expect(requests).toEqual(['GET /rooms/ABC234', 'GET /rooms/ABC234']);

    const invalid = { status: 400, body: { status: 400, code: 'VALIDATION_FAILED', title: 'Bad Request' } };
    replies.set('POST /rooms/ABC234/join', [invalid, invalid]);
    const refused = await api('POST', '/rooms/ABC234/join', { player: '' });
    expect(refused).toMatchObject({ ok: false, problem: { code: 'VALIDATION_FAILED' } });
    expect(requests.filter((request) => request === 'POST /rooms/ABC234/join')).toHaveLength(1);
  });
});

describe('api when the session is gone (web review W1)', () => {
  it('tells the shell of a 401 UNAUTHENTICATED, and of no other refusal', async () => {
    const calls: string[] = [];
    whenUnauthenticated(() => calls.push('unauthenticated'));
    const refusal = (status: number, code: string) => ({ status, body: { status, code, title: 'Refused' } });
    replies.set('GET /users/me', [refusal(401, 'UNAUTHENTICATED')]);
    replies.set('GET /admin/users', [refusal(403, 'FORBIDDEN')]);
    replies.set('POST /auth/step-up', [refusal(401, 'INVALID_CREDENTIALS')]);
    await api('GET', '/users/me');
    expect(calls).toEqual(['unauthenticated']);
    await api('GET', '/admin/users');
    await api('POST', '/auth/step-up', { password: 'x' });
    expect(calls).toEqual(['unauthenticated']);
  });
});

import { describe, expect, it } from 'vitest';
import { canonicalRoomCode, joinHash, loginHash, parseRoute, roomHash } from '../../web/src/routes.js';

describe('parseRoute', () => {
  it.each([
    ['', { name: 'home' }],
    ['#/', { name: 'home' }],
    ['#/login', { name: 'login' }],
    ['#/signup', { name: 'signup' }],
    ['#/rooms/new', { name: 'create-room' }],
    ['#/join', { name: 'join' }],
    ['#/join/abcd-2345', { name: 'join', code: 'ABCD2345' }],
    ['#/rooms/abcd2345', { name: 'room', code: 'ABCD2345' }],
    ['#/rooms/ABCD2345/', { name: 'room', code: 'ABCD2345' }],
    ['#/rooms', { name: 'my-rooms' }],
    ['#/rooms/ABCD2345/extra', { name: 'not-found' }],
    ['#/rooms/%E0%A4%A', { name: 'not-found' }],
    ['#main', { name: 'not-found' }],
  ])('%s', (hash, route) => {
    expect(parseRoute(hash)).toEqual(route);
  });

  it('follows only in-app `next` targets after login', () => {
    expect(parseRoute(loginHash('/rooms/new'))).toEqual({ name: 'login', next: '/rooms/new' });
    expect(parseRoute('#/login?next=//evil.example')).toEqual({ name: 'login' });
    expect(parseRoute('#/login?next=https%3A%2F%2Fevil.example')).toEqual({ name: 'login' });
    expect(parseRoute('#/login?next=%2Flogin')).toEqual({ name: 'login' });
  });

  it('round-trips the hashes it builds', () => {
    expect(parseRoute(roomHash('ABCD2345'))).toEqual({ name: 'room', code: 'ABCD2345' });
    expect(parseRoute(joinHash('ABCD2345'))).toEqual({ name: 'join', code: 'ABCD2345' });
  });
});

describe('canonicalRoomCode', () => {
  it('drops spaces and dashes and upper-cases ASCII letters only', () => {
    expect(canonicalRoomCode(' ab cd-23 45 ')).toBe('ABCD2345');
    // Non-ASCII stays as typed, so odd input cannot turn into a valid code (ﬀ would become FF).
    expect(canonicalRoomCode('ﬀ')).toBe('ﬀ');
  });
});

// The GET /users/me request each benchmark target sends, shared by cpu-profile.mjs and
// perf-steps.mjs: `server` is the JSON line bench/server.mjs (or ceiling.mjs) printed.
//   ceiling, twin: no credentials (the twin's route is the unguarded copy)
//   jwt, database: the bearer access token; cookie: the session cookie
export function usersMeRequest(target, server) {
  const headers =
    target === 'jwt' || target === 'database'
      ? { authorization: `Bearer ${server.token}` }
      : target === 'cookie'
        ? { cookie: server.cookie }
        : {};
  const path = target === 'twin' ? '/bench/users/me-unguarded' : '/users/me';
  return { url: `${server.url}${path}`, headers };
}

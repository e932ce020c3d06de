// The autocannon options of a login flood (POST /token, password grant) that rotates over the
// bench server's accounts (bench/server.mjs, BENCH_LOGIN_ACCOUNTS), so production's per-account
// success limit (60 per window) is never what a benchmark measures. Shared by run.mjs and
// cpu-profile.mjs.

/** Options for `autocannon({ ...loginRequests(server), duration })` (or `amount`). */
export function loginRequests(server) {
  const bodies = server.loginEmails.map((email) =>
    new URLSearchParams({ grant_type: 'password', username: email, password: server.password }).toString(),
  );
  let next = 0;
  return {
    url: `${server.url}/token`,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    // Each request logs in the next account in turn. autocannon 8 applies `setupRequest` only
    // inside `requests` (a top-level one is ignored, and every login then went to one account,
    // which its success limit answered with 429 after 60).
    requests: [
      {
        setupRequest: (request) => {
          request.body = bodies[next];
          next = (next + 1) % bodies.length;
          return request;
        },
      },
    ],
    connections: Math.max(4, 2 * server.hashConcurrency),
  };
}

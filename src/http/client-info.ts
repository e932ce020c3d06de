import type { FastifyRequest } from 'fastify';
import type { ClientInfo } from '../sessions/session-manager.js';

/**
 * The caller's address and user agent, as recorded on sessions and audit entries. `request.ip`
 * honours `X-Forwarded-For` only when TRUST_PROXY is set (Fastify's `trustProxy`).
 */
export function clientInfo(request: FastifyRequest): ClientInfo & { ip: string } {
  const agent = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof agent === 'string' ? agent.slice(0, 512) : null };
}

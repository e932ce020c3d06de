import { once } from 'node:events';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * Starts `app` on an ephemeral port of the loopback interface (SSE and browser tests need a real
 * socket; everything else uses `app.inject`) and returns its base URL. Close the app to free it.
 */
export async function listenOnLoopback(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return `http://127.0.0.1:${address.port}`;
}

/** Sends raw bytes and resolves with the whole answer once the server closes or answers. */
export async function rawRequest(port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    answer += chunk;
  });
  socket.write(text);
  // One request, so the answer ends with its body: wait for the blank line and the body's length.
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      const end = answer.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(answer);
      if (end !== -1 && length !== null && answer.length >= end + 4 + Number(length[1])) resolve();
    };
    socket.on('data', check);
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  socket.destroy();
  return answer;
}

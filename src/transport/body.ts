import type { IncomingMessage } from 'node:http';
import { PortcullisError } from '../errors.ts';

export const bodyTooLarge = (limit: number): PortcullisError =>
  new PortcullisError('ERR_BODY_TOO_LARGE', `Request body exceeds ${limit} bytes`);

/** Reads a request body, refusing (before buffering it) anything over `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return (await readBodyBytes(req, limit)).toString('utf8');
}

/** The body's bytes as sent (a signature covers them, not their decoding), at most `limit` of them. */
export function readBodyBytes(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(bodyTooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(bodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

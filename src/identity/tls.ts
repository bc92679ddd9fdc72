import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { RequestListener } from 'node:http';
import https from 'node:https';
import { resolve } from 'node:path';
import type { Logger } from '../observability/log.ts';
import type { MtlsConfig } from './config.ts';

export interface TlsServer {
  readonly server: https.Server;
  stop(): void;
}

/**
 * An HTTPS server that requires a client certificate chained to the trust
 * bundle. Certificate, key and bundle are re-read when their files change
 * (SVIDs live minutes): new handshakes use them, no restart.
 */
export function createMtlsServer(
  cfg: MtlsConfig,
  baseDir: string,
  handler: RequestListener,
  log: Logger,
): TlsServer {
  const paths = [cfg.cert, cfg.key, cfg.trustBundle].map((p) => resolve(baseDir, p));
  const material = () => ({
    cert: readFileSync(paths[0]!),
    key: readFileSync(paths[1]!),
    ca: readFileSync(paths[2]!),
  });
  const server = https.createServer(
    { ...material(), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    handler,
  );
  const reload = () => {
    try {
      server.setSecureContext({ ...material(), minVersion: 'TLSv1.2' });
      log.info('TLS material reloaded');
    } catch (err) {
      // Keep serving with what worked; a half-written file is retried on its next change.
      log.warn('TLS reload failed; keeping the previous certificates', { err: String(err) });
    }
  };
  for (const p of paths) watchFile(p, { interval: cfg.reloadIntervalMs, persistent: false }, reload);
  return {
    server,
    stop: () => {
      for (const p of paths) unwatchFile(p, reload);
    },
  };
}

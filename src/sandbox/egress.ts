import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable, Transform, type Writable } from 'node:stream';
import { type EgressTarget, isAllowed, parseAuthority } from './allow.ts';

/** One connection an upstream asked for, and what the proxy decided. */
export interface EgressDecision extends EgressTarget {
  readonly upstream: string;
  readonly allowed: boolean;
  readonly method: 'CONNECT' | 'HTTP';
  /** The target did not parse (refused): host and port say nothing. */
  readonly malformed?: true;
  /** Refused because the audit log cannot record it now, though the allowlist names it. */
  readonly unrecorded?: true;
}

export interface EgressProxyOptions {
  readonly upstream: string;
  readonly allow: readonly string[];
  /** Told of every decision, allowed or refused (the gateway logs each). */
  readonly decided: (d: EgressDecision) => void;
  /** Whether a connection could be recorded now: while not, nothing leaves, as no call does. */
  readonly recordable: () => boolean;
}

/**
 * The only way out of an allowlist sandbox: an HTTP proxy on a unix socket
 * that is bound into the sandbox. It takes CONNECT tunnels and absolute-form
 * HTTP requests, decides each by host name against the allowlist, resolves
 * allowed names itself (the sandbox has no DNS) and refuses everything else
 * with 403.
 */
export class EgressProxy {
  readonly socketPath: string;
  private readonly dir: string;
  private readonly server: Server;
  private readonly opts: EgressProxyOptions;
  private readonly open = new Set<Socket>();

  private constructor(opts: EgressProxyOptions) {
    this.opts = opts;
    this.dir = mkdtempSync(join(tmpdir(), 'portcullis-egress-'));
    this.socketPath = join(this.dir, 'egress.sock');
    this.server = createServer((req, res) => this.forward(req, res));
    this.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.tunnel(req, socket, head),
    );
    this.server.on('connection', (s: Socket) => {
      this.open.add(s);
      s.on('close', () => this.open.delete(s));
    });
  }

  static async start(opts: EgressProxyOptions): Promise<EgressProxy> {
    const proxy = new EgressProxy(opts);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(proxy.socketPath, () => resolve());
    });
    // bwrap may run as another user (nobody, under a root gateway): it must reach the socket to bind it in.
    chmodSync(proxy.dir, 0o711);
    chmodSync(proxy.socketPath, 0o666);
    proxy.server.unref();
    return proxy;
  }

  private decide(target: EgressTarget | undefined, method: EgressDecision['method']): boolean {
    if (!target) {
      this.opts.decided({
        upstream: this.opts.upstream,
        host: '',
        port: 0,
        allowed: false,
        method,
        malformed: true,
      });
      return false;
    }
    const listed = isAllowed(this.opts.allow, target);
    const unrecorded = listed && !this.opts.recordable();
    const allowed = listed && !unrecorded;
    this.opts.decided({
      upstream: this.opts.upstream,
      ...target,
      allowed,
      method,
      ...(unrecorded ? { unrecorded } : {}),
    });
    return allowed;
  }

  private tunnel(req: IncomingMessage, client: Socket, head: Buffer): void {
    const target = parseAuthority(req.url ?? '');
    if (!this.decide(target, 'CONNECT') || !target) {
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const upstream = connect(target.port, target.host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(this.gate(upstream, client)).pipe(client);
      client.pipe(this.gate(client, upstream)).pipe(upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n'));
    client.on('error', () => upstream.destroy());
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    let url: URL | undefined;
    try {
      url = new URL(req.url ?? '');
    } catch {}
    const target = url?.protocol === 'http:' ? parseAuthority(url.host, 80) : undefined;
    if (!this.decide(target, 'HTTP') || !url || !target) {
      res.writeHead(403, { connection: 'close' }).end();
      return;
    }
    const out = request(
      {
        host: target.host,
        port: target.port,
        method: req.method,
        path: url.pathname + url.search,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(this.gate(answer, res)).pipe(res);
      },
    );
    out.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    req.pipe(out);
  }

  /**
   * Passes what flows through an allowed connection while it can be recorded:
   * once the audit log cannot record, a tunnel or answer already open is cut
   * (both ends destroyed), as no new one is let out.
   */
  private gate(from: Readable, to: Writable): Transform {
    return new Transform({
      transform: (chunk, _encoding, done) => {
        if (this.opts.recordable()) return done(null, chunk);
        from.destroy();
        to.destroy();
        done();
      },
    });
  }

  async close(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

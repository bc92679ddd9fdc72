import type { LoadedConfig } from '../config/load.ts';
import { JSONRPC } from '../errors.ts';
import { ANONYMOUS } from '../identity/principal.ts';
import type { JsonObject } from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import { newSession } from '../session.ts';
import { Aggregator } from '../upstream/aggregate.ts';
import type { RelatedSink } from '../upstream/connection.ts';
import { httpTransport } from '../upstream/http.ts';
import { UpstreamPool } from '../upstream/pool.ts';
import { stdioTransport } from '../upstream/stdio.ts';

const NO_CLIENT: RelatedSink = {
  notify() {},
  request: async (m) => ({
    jsonrpc: '2.0',
    id: m.id,
    error: { code: JSONRPC.METHOD_NOT_FOUND, message: 'not supported' },
  }),
};

/** For the CLI: every upstream's tools/list, once, with exposed names (what policy is written against). */
export async function listUpstreamTools(
  loaded: LoadedConfig,
  log: Logger,
): Promise<{ item: JsonObject; upstream: string }[]> {
  const specs = Object.entries(loaded.config.upstreams).map(([name, cfg]) => ({
    name,
    prefix: cfg.prefix ?? name,
    timeoutMs: cfg.timeoutMs,
    isolation: cfg.isolation,
    restart: cfg.transport === 'stdio' ? cfg.restart : { initialDelayMs: 250, maxDelayMs: 30_000 },
    createTransport: () =>
      cfg.transport === 'stdio'
        ? stdioTransport(name, cfg, loaded.baseDir, log)
        : httpTransport(name, cfg, loaded.baseDir, log),
  }));
  const pool = new UpstreamPool(specs, log, { limits: loaded.config.limits });
  const agg = new Aggregator(pool, log);
  let listed: { item: JsonObject; upstream: string }[] = [];
  agg.listFilter = (_s, _m, items) => {
    listed = items;
    return [];
  };
  const session = newSession({
    id: 'policy-cli',
    key: 'policy-cli',
    principal: ANONYMOUS,
    era: 'legacy',
    protocolVersion: '2025-11-25',
    client: { capabilities: {}, info: { name: 'portcullis-policy', version: '1.0.0' } },
  });
  try {
    await agg.list(session, 'tools/list', undefined, NO_CLIENT);
    return listed;
  } finally {
    await pool.closeAll();
  }
}

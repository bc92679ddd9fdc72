import { randomUUID } from 'node:crypto';
import type { LoadedConfig } from '../config/load.ts';
import { directInstanceCredentials } from '../credentials/instance-backends.ts';
import { JSONRPC } from '../errors.ts';
import { ANONYMOUS } from '../identity/principal.ts';
import type { Logger } from '../observability/log.ts';
import { newSession } from '../session.ts';
import { Aggregator, type ListedItem } from './aggregate.ts';
import type { RelatedSink } from './connection.ts';
import { UpstreamPool } from './pool.ts';
import { upstreamSpecs } from './spec.ts';
import type { StdioStarts } from './starts.ts';

const NO_CLIENT: RelatedSink = {
  notify() {},
  request: async (m) => ({
    jsonrpc: '2.0',
    id: m.id,
    error: { code: JSONRPC.METHOD_NOT_FOUND, message: 'not supported' },
  }),
};

/**
 * For the CLI: every upstream's tools/list, once, with exposed names (what
 * policy is written against). Stdio upstreams start through `starts`, server pins checked, as in the gateway.
 */
export async function listUpstreamTools(
  loaded: LoadedConfig,
  log: Logger,
  starts: StdioStarts,
): Promise<ListedItem[]> {
  // A role is minted for the listing and dropped after it, unrecorded; nothing is reaped from beside a running gateway.
  const credentials = directInstanceCredentials(loaded, randomUUID);
  const pool = new UpstreamPool(upstreamSpecs(loaded, log, starts, credentials.byUpstream), log, {
    limits: loaded.config.limits,
  });
  const agg = new Aggregator(pool, log, {
    // Nothing here relays to a caller: no stream is opened that would need one re-checked.
    recheck: async () => {
      throw new Error('no caller to re-check');
    },
    toolsListed: () => {},
    // Policies are checked against every tool an upstream lists, quarantined or not; nothing here reaches a model.
    pins: {
      review: async (listings) => new Map(listings.map((l) => [l.upstream, [...l.tools]])),
      isQuarantined: () => false,
    },
    now: Date.now,
  });
  const session = newSession({
    id: 'policy-cli',
    key: 'policy-cli',
    principal: ANONYMOUS,
    era: 'legacy',
    protocolVersion: '2025-11-25',
    client: { capabilities: {}, info: { name: 'portcullis-policy', version: '1.0.0' } },
  });
  try {
    return await agg.list(session, 'tools/list', undefined, NO_CLIENT);
  } finally {
    await pool.closeAll();
    await credentials.close();
  }
}

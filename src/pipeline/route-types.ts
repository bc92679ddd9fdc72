import type { JsonObject } from '../jsonrpc.ts';

/** Where a call goes, decided by the route stage and carried out by the forward stage. */
export type Route =
  /** Answered by the gateway itself (initialize, ping, server/discover, aggregated lists). */
  | { kind: 'gateway'; method: string }
  /** Sent to one upstream, with names translated back to the upstream's own. */
  | {
      kind: 'upstream';
      upstream: string;
      method: string;
      params: JsonObject | undefined;
      /** The name the client used (e.g. `fs__read_file`) and the upstream's (`read_file`). */
      target?: { exposed: string; original: string };
    };

import type { UpstreamStart } from './pool.ts';

/**
 * The audit record of one upstream start (`type: upstream-start`): which
 * upstream, for whom, what it runs and in which sandbox (network, writable
 * paths, limits), and whether it started.
 */
export function upstreamStartRecord(
  start: UpstreamStart,
  opts: { time: number; id: string },
): Record<string, unknown> {
  return {
    v: 1,
    type: 'upstream-start',
    time: opts.time,
    callId: `start_${opts.id}`,
    session: '',
    principal: { id: start.principal },
    tool: '',
    upstream: start.upstream,
    isolation: start.isolation,
    command: start.launch?.command ?? null,
    sandbox: start.launch?.sandbox ?? null,
    result: start.result,
    ...(start.error ? { code: start.error } : {}),
  };
}

import type { Isolation } from './config.ts';

/** Who an upstream instance is started for. */
export interface InstanceHolder {
  readonly isolation: Isolation;
  /** The caller it serves alone; '' for a shared instance. */
  readonly principal: string;
  /** The legacy session it serves alone (`session` isolation); '' otherwise. */
  readonly session: string;
}

/**
 * How a started process is confined: `{ mechanism: 'bubblewrap', network,
 * writable, limits }`, or `{ mechanism: 'none', why }` when it is not.
 */
export type StartSandbox = Readonly<Record<string, unknown>>;

export type StartResult = 'started' | 'refused' | 'failed';

/** One start of a stdio upstream process, as its audit record tells it. */
export interface UpstreamStart {
  readonly upstream: string;
  readonly holder: InstanceHolder;
  readonly command: {
    readonly command: string;
    readonly args: readonly string[];
    readonly cwd: string;
    /** The file spawned (a bare command resolved through PATH), when it was found. */
    readonly executable?: string | undefined;
  };
  /** What the start was checked against (`expected`, from `source`) and what was found (`actual`). */
  readonly pin: {
    readonly source?: string | undefined;
    readonly expected?: unknown;
    readonly actual?: unknown;
  };
  readonly result: StartResult;
  /** Why it was refused or failed: the error code and which hashes differ (or what could not be read). */
  readonly code?: string | undefined;
  readonly reason?: string | undefined;
  readonly pid?: number | undefined;
  readonly sandbox?: StartSandbox | undefined;
}

/** A password in a URL's user part (`postgres://u:PASSWORD@host`) never reaches the log. */
const maskUrlPassword = (arg: string): string => arg.replace(/(\/\/[^/:@\s]*:)[^@/\s]+@/g, '$1***@');

/** The audit record (`type: upstream-start`); the principal column is the holder, or `gateway` for a shared instance. */
export function upstreamStartRecord(
  start: UpstreamStart,
  at: { time: number; id: string },
): Record<string, unknown> {
  return {
    v: 1,
    type: 'upstream-start',
    time: at.time,
    callId: `start_${at.id}`,
    session: start.holder.session,
    principal: { id: start.holder.principal || 'gateway' },
    tool: '',
    upstream: start.upstream,
    holder: { ...start.holder },
    command: {
      ...start.command,
      args: start.command.args.map(maskUrlPassword),
    },
    pin: { ...start.pin },
    result: start.result,
    ...(start.code ? { code: start.code } : {}),
    ...(start.reason ? { reason: start.reason } : {}),
    ...(start.pid !== undefined ? { pid: start.pid } : {}),
    ...(start.sandbox ? { sandbox: start.sandbox } : {}),
  };
}

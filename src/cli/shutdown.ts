import type { Logger } from '../observability/log.ts';
import type { RunningGateway } from '../server.ts';

/** How long a stopping gateway may take to close before the process ends anyway. */
export const SHUTDOWN_GRACE_MS = 15_000;

/**
 * Closes the gateway after a stop signal. A close that does not finish within
 * the grace period must not keep a stopped gateway alive (a supervisor would
 * kill it later anyway): the process ends with exit code 1 and an error line
 * naming the part that did not close.
 */
export async function closeOnStop(
  running: Pick<RunningGateway, 'close'>,
  log: Logger,
  opts: { graceMs?: number; exit?: (code: number) => void } = {},
): Promise<void> {
  const graceMs = opts.graceMs ?? SHUTDOWN_GRACE_MS;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let step = 'start';
  const timer = setTimeout(() => {
    log.error('shutdown did not finish; exiting anyway', { step, graceMs });
    exit(1);
  }, graceMs);
  try {
    await running.close((s) => {
      step = s;
    });
  } finally {
    clearTimeout(timer);
  }
}

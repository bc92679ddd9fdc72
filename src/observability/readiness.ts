import type { Logger } from './log.ts';

/** How long one readiness check may take before it counts as failing: a probe must answer, not hang. */
export const READINESS_TIMEOUT_MS = 2000;

/**
 * The names of the checks that fail now (each one a part without which every
 * call is denied), sorted; none when the gateway can serve. Why each failed is
 * logged, never returned: the names are all a probe needs.
 */
export async function failingChecks(
  checks: Readonly<Record<string, () => Promise<unknown>>>,
  log: Logger,
  timeoutMs = READINESS_TIMEOUT_MS,
): Promise<string[]> {
  const failing: string[] = [];
  await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([check(), timeout]);
      } catch (err) {
        failing.push(name);
        log.warn('not ready', { check: name, err: String(err) });
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return failing.sort();
}

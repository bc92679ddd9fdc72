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

export interface ReadinessOptions {
  readonly checks: Readonly<Record<string, () => Promise<unknown>>>;
  readonly log: Logger;
  readonly now: () => number;
  /** How long an answer is reused: probes, which need no credential, never run the checks more often. */
  readonly reuseMs?: number;
  readonly timeoutMs?: number;
}

/**
 * The readiness of one gateway, shared: probes that arrive while the checks run
 * get the same answer, and for `reuseMs` after it, so a flood of probes costs
 * the stores one round of checks, not one each.
 */
export class Readiness {
  readonly #opts: ReadinessOptions;
  #running: Promise<string[]> | undefined;
  #last: { at: number; failing: string[] } | undefined;

  constructor(opts: ReadinessOptions) {
    this.#opts = opts;
  }

  failing(): Promise<string[]> {
    const now = this.#opts.now();
    const last = this.#last;
    if (last && now >= last.at && now - last.at < (this.#opts.reuseMs ?? READINESS_REUSE_MS))
      return Promise.resolve(last.failing);
    this.#running ??= failingChecks(this.#opts.checks, this.#opts.log, this.#opts.timeoutMs)
      .then((failing) => {
        this.#last = { at: this.#opts.now(), failing };
        return failing;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }
}

export const READINESS_REUSE_MS = 1000;

import { type ErrorCode, PortcullisError } from '../errors.ts';

/** Policies that do not load: parse or validation failures, with the engine's exact messages. */
export class PolicyError extends PortcullisError {
  readonly problems: readonly string[];
  constructor(code: ErrorCode, message: string, problems: readonly string[]) {
    super(code, problems.length > 0 ? `${message}:\n  ${problems.join('\n  ')}` : message, {
      detail: { problems },
    });
    this.problems = problems;
  }
}

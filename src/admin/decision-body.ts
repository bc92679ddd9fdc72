import { z } from 'zod';
import { invalidParams, PortcullisError, parseError } from '../errors.ts';

/** No control characters: a comment reaches logs, the audit log and chat messages. */
const text = z
  .string()
  .max(2000)
  .regex(/^[^\p{Cc}]*$/u, 'must not hold control characters');

const decisionSchema = z.strictObject({
  /** The argument hash the approver was shown: the decision holds only for that exact call. */
  argsHash: z.string().min(1).max(128),
  comment: text.optional(),
});

export interface DecisionBody {
  readonly argsHash: string;
  readonly comment: string;
}

/** An approver's `approve` or `deny` body; a denial must say why. */
export function decisionBody(raw: Buffer, verdict: 'grant' | 'deny'): DecisionBody {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch {
    throw parseError('the body is not JSON');
  }
  const parsed = decisionSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalidParams(`${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  const comment = parsed.data.comment?.trim() ?? '';
  if (verdict === 'deny' && comment === '')
    throw new PortcullisError('ERR_INVALID_PARAMS', 'a denial needs a comment', {
      publicArgs: ['comment: required to deny'],
    });
  return { argsHash: parsed.data.argsHash, comment };
}

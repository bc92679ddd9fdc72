import { PortcullisError } from '../errors.ts';
import { isObject, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.ts';

/** What asking the client's user looks like to the approval stage: a server-to-client request on the call's stream. */
export type AskClient = (request: JsonRpcRequest, signal: AbortSignal) => Promise<JsonRpcResponse>;

export interface Confirmation {
  readonly tool: string;
  readonly argsHash: string;
  readonly reason: string;
  /** Whether the client declared the `elicitation` capability. */
  readonly clientCanElicit: boolean;
}

/**
 * `@obligation("confirm")`: the client's user confirms this exact call through
 * MCP elicitation. Weaker than an approver (the user may be the agent's own
 * operator, or the agent itself answering), which is why policies must ask
 * for it by name and the audit records it as a confirmation, not an approval.
 * Refused: a client with no elicitation (ERR_CONFIRM_UNAVAILABLE), a user who
 * declines or cancels (ERR_CONFIRM_DECLINED).
 */
export async function confirmWithUser(c: Confirmation, ask: AskClient, signal: AbortSignal): Promise<void> {
  if (!c.clientCanElicit)
    throw new PortcullisError('ERR_CONFIRM_UNAVAILABLE', `client offers no elicitation to confirm ${c.tool}`);
  const answer = await ask(
    {
      jsonrpc: '2.0',
      id: 0,
      method: 'elicitation/create',
      params: {
        message: `Allow the agent to call ${c.tool}? Reason given: ${c.reason || '(none)'}. Arguments hash ${c.argsHash.slice(0, 16)}…`,
        requestedSchema: {
          type: 'object',
          properties: { confirm: { type: 'boolean', title: `Allow ${c.tool}`, default: false } },
          required: ['confirm'],
        },
      },
    },
    signal,
  );
  if (!answer.result)
    throw new PortcullisError('ERR_CONFIRM_UNAVAILABLE', `elicitation failed for ${c.tool}`);
  const { action, content } = answer.result as { action?: unknown; content?: unknown };
  if (action !== 'accept' || !isObject(content) || content.confirm !== true)
    throw new PortcullisError('ERR_CONFIRM_DECLINED', `user answered ${String(action)} for ${c.tool}`);
}

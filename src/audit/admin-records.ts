import { UsageError } from '../errors.ts';
import { item, MAX_LEAF } from './records.ts';
import type { AppendItem } from './store.ts';

/** What an operator did to the gateway's identities and keys, as its audit record names it. */
export type AdminEvent = 'token-issued' | 'revoked' | 'token-keys-rotated' | 'attest-keys-rotated';

/**
 * Who ran the command: the operator named with `--as` (`operator:NAME`, one of
 * `approvals.approvers.operators`), if any, and the operating-system account it ran as.
 */
export interface AdminActor {
  readonly operator?: string;
  readonly osUser: string;
  readonly host: string;
}

/** The principal column of an admin record: the operator, else the account the command ran as. */
export const actorId = (actor: AdminActor): string => actor.operator ?? `os:${actor.osUser}`;

/**
 * An operator's act (`type: admin`): a token issued, a revocation, a key
 * rotation. Its `callId` is the issued token's `jti` (the id a call's decision
 * record names as `principal.tokenId`), else a new id; `detail` never holds a
 * token, and never overrides the fields every record has. Refused with
 * ERR_USAGE when it would not fit a leaf: what an operator typed must not
 * make an entry the log's tiles cannot hold.
 */
export function adminItem(
  event: AdminEvent,
  actor: AdminActor,
  id: string,
  time: number,
  detail: Readonly<Record<string, unknown>>,
): AppendItem {
  const appended = item({
    ...detail,
    v: 1,
    type: 'admin',
    event,
    time,
    callId: id,
    session: '',
    tool: '',
    principal: { id: actorId(actor) },
    actor: { ...actor },
  });
  if (appended.leaf.length > MAX_LEAF)
    throw new UsageError(
      `the ${event} record would be ${appended.leaf.length} bytes, over ${MAX_LEAF}: shorten what was given`,
    );
  return appended;
}

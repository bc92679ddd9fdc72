/** What an operator did to the gateway's identities and keys, as its audit record names it. */
export type AdminEvent = 'token-issued' | 'revoked' | 'token-keys-rotated' | 'attest-keys-rotated';

/** Who ran the command: the name given with `--as`, if any, and the operating-system account it ran as. */
export interface AdminActor {
  readonly as?: string;
  readonly osUser: string;
  readonly host: string;
}

/** The principal column of an admin record: the declared name, else the account the command ran as. */
export const actorId = (actor: AdminActor): string => actor.as ?? `os:${actor.osUser}`;

/**
 * An operator's act (`type: admin`): a token issued, a revocation, a key
 * rotation. Its `callId` is the issued token's `jti` (so the token's calls and
 * its issue are found by one id), else a new id; `detail` never holds a token.
 */
export function adminRecord(
  event: AdminEvent,
  actor: AdminActor,
  id: string,
  time: number,
  detail: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  return {
    v: 1,
    type: 'admin',
    event,
    time,
    callId: id,
    session: '',
    tool: '',
    principal: { id: actorId(actor) },
    actor: { ...actor },
    ...detail,
  };
}

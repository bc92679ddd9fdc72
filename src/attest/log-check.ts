import { matchingEntries, signedMeta } from '../audit/search.ts';
import type { AuditStore } from '../audit/store.ts';
import { PortcullisError } from '../errors.ts';
import { isObject } from '../jsonrpc.ts';
import type { VerifiedAttestation } from './verify.ts';

/** Where an attested call sits in the audit log. */
export interface LoggedCall {
  readonly decisionIndex: number;
  readonly outcomeIndex: number;
}

const notLogged = (why: string): PortcullisError =>
  new PortcullisError('ERR_ATTESTATION_NOT_LOGGED', `the call is not in the audit log as attested: ${why}`);

/**
 * The audit log vouches for an attested result: the decision record at the
 * attested index names the attested call, and that call's outcome record,
 * linked to it, keeps the same result hash and key. Every entry read is
 * checked against its signed leaf (a changed column is ERR_AUDIT_TAMPERED);
 * `portcullis audit verify` proves the log itself.
 */
export async function checkInLog(store: AuditStore, a: VerifiedAttestation): Promise<LoggedCall> {
  const head = await store.head();
  if (a.index >= head.size) throw notLogged(`index ${a.index} is past the log's end (${head.size})`);
  const [decision] = await store.entries(a.index, a.index + 1);
  if (!decision || decision.index !== a.index) throw notLogged(`entry ${a.index} is missing`);
  const meta = signedMeta(decision);
  if (meta.kind !== 'decision' || meta.callId !== a.callId)
    throw notLogged(`entry ${a.index} is not the decision record of call ${a.callId}`);
  const filter = { principal: meta.principal, tool: meta.tool, session: meta.session };
  for (const e of await matchingEntries(store, filter, a.index + 1, head.size)) {
    const m = signedMeta(e);
    if (m.kind !== 'outcome' || m.callId !== a.callId) continue;
    const record = JSON.parse(e.leaf.toString('utf8')) as Record<string, unknown>;
    const att = record.attestation;
    if (record.decisionIndex !== a.index) throw notLogged(`outcome ${e.index} links to another decision`);
    if (!isObject(att) || att.resultHash !== a.resultHash || att.kid !== a.kid)
      throw notLogged(`outcome ${e.index} records another result`);
    return { decisionIndex: a.index, outcomeIndex: e.index };
  }
  throw notLogged(`no outcome record for call ${a.callId}`);
}

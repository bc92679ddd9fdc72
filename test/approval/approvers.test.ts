import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApproverRole } from '../../src/approval/approvers.ts';
import { approversSchema } from '../../src/approval/config.ts';
import type { Principal } from '../../src/identity/principal.ts';
import { failsWith } from '../helpers.ts';

const role = new ApproverRole(
  approversSchema.parse({
    identities: [
      { user: 'alice' },
      { claim: 'groups', value: 'approvers' },
      { principal: 'webhook:chat:U42' },
    ],
  }),
);

const principal = (over: Partial<Principal>): Principal => ({
  id: 'jwt:x',
  authMethod: 'jwt',
  scopes: [],
  claims: {},
  ...over,
});

describe('the approver role of a callback approver', () => {
  it('admits a callback approver only by a principal entry that names it', () => {
    assert.equal(role.named('webhook:chat:U42'), 'webhook:chat:U42');
    assert.throws(() => role.named('webhook:chat:U99'), failsWith('ERR_APPROVER_NOT_ALLOWED'));
  });

  it('never takes a chat user for the verified user or group of the same name', () => {
    assert.equal(role.identity(principal({ id: 'jwt:alice', user: 'alice' })), 'jwt:alice');
    assert.throws(() => role.named('webhook:chat:alice'), failsWith('ERR_APPROVER_NOT_ALLOWED'));
    assert.throws(() => role.named('alice'), failsWith('ERR_APPROVER_NOT_ALLOWED'));
    assert.throws(() => role.named('approvers'), failsWith('ERR_APPROVER_NOT_ALLOWED'));
  });
});

/** The Cedar request of one benchmark call of `echo__echo`, as the gateway builds it (policy and scale benches). */
import type { Principal } from '../../src/identity/principal.ts';
import { type SessionSnapshot, toCedar } from '../../src/policy/facts/request.ts';
import type { ToolDef } from '../../src/policy/model/catalog.ts';
import { NOTHING_DETECTED } from '../../src/protect/service.ts';

export function echoCallRequest(
  principal: Principal,
  tool: ToolDef,
  i: number,
  now: number,
  session: SessionSnapshot,
): ReturnType<typeof toCedar> {
  return toCedar({
    principal,
    method: 'tools/call',
    target: { kind: 'tool', tool },
    input: { text: `hello ${i}` },
    reason: 'benchmark run',
    now,
    utcOffsetMinutes: 0,
    network: { address: '127.0.0.1', transport: 'http' },
    session,
    approval: { granted: false, breakGlass: false },
    request: { signed: false },
    detected: NOTHING_DETECTED,
  });
}

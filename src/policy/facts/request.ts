import { isIP } from 'node:net';
import { deepFreeze } from '../../freeze.ts';
import type { Principal } from '../../identity/principal.ts';
import type { DetectedTypes } from '../../protect/service.ts';
import { methodSpec } from '../../protocol/methods.ts';
import type { EntityJson } from '../engine/cedar.ts';
import type { ToolDef } from '../model/catalog.ts';
import { ACTION, toolAction } from '../model/cedar-schema.ts';

export type Target =
  | { kind: 'tool'; tool: ToolDef }
  | { kind: 'resource'; uri: string; server: string }
  | { kind: 'prompt'; name: string; server: string }
  | { kind: 'server'; server: string };

export interface SessionSnapshot {
  callsLastMinute: number;
  toolsUsed: readonly string[];
  sensitiveRead: boolean;
  /** A result the caller received lately carried instructions injected for the model. */
  tainted: boolean;
  /** The caller's tool history is at its limit: a call to a tool not in it could not be remembered. */
  toolsFull: boolean;
}

/** Everything one decision is made from, before it is put in Cedar's terms. */
export interface CallFacts {
  principal: Principal;
  /** The MCP method (`tools/call`, `resources/read`, …). */
  method: string;
  target: Target;
  /** The arguments as Cedar values (tools only; `{}` otherwise). */
  input: Record<string, unknown>;
  reason: string;
  /** Epoch milliseconds, from the injected clock. */
  now: number;
  utcOffsetMinutes: number;
  network: { address: string; transport: string };
  session: SessionSnapshot;
  approval: { granted: boolean; breakGlass: boolean };
  /** How the request itself came: `signed` by a key bound to the caller (`context.request`). */
  request: { signed: boolean };
  /** What the detectors found in the arguments (`context.detected`). */
  detected: DetectedTypes;
}

export interface CedarRequest {
  principal: { type: string; id: string };
  action: { type: string; id: string };
  resource: { type: string; id: string };
  context: Record<string, unknown>;
  entities: EntityJson[];
}

const MAX_TAGS = 64;
const MAX_TAG_LENGTH = 1024;

export function actionOf(method: string, target: Target): string {
  if (target.kind === 'tool') return toolAction(target.tool.name);
  return methodSpec(method)?.action === 'own' ? method : ACTION.other;
}

/** The request in Cedar's terms, with only the entities this one decision needs. */
export function toCedar(f: CallFacts): CedarRequest {
  const principal = principalEntity(f.principal);
  const resource = resourceEntity(f.target);
  const actionId = actionOf(f.method, f.target);
  const action = actionEntity(actionId, f.target.kind === 'tool');
  return {
    principal: principal.uid as CedarRequest['principal'],
    action: { type: 'Action', id: actionId },
    resource: resource.uid as CedarRequest['resource'],
    context: contextOf(f),
    entities: [principal, resource, action],
  };
}

/** Frozen and shared: one per action id and kind; a bounded cache (an entry depends on nothing else). */
const actionEntities = new Map<string, EntityJson>();
const MAX_ACTION_ENTITIES = 10_000;

function actionEntity(id: string, isTool: boolean): EntityJson {
  const key = `${isTool ? 't' : 'm'}:${id}`;
  let entity = actionEntities.get(key);
  if (!entity) {
    entity = deepFreeze({
      uid: { type: 'Action', id },
      attrs: {},
      parents: isTool ? [{ type: 'Action', id: ACTION.toolsCall }] : [],
    });
    if (actionEntities.size >= MAX_ACTION_ENTITIES) actionEntities.clear();
    actionEntities.set(key, entity);
  }
  return entity;
}

/**
 * Per Principal object: the identity stage hands out the same frozen Principal
 * for every call made with a cached token, and nothing in it can change.
 */
const principalEntities = new WeakMap<Principal, EntityJson>();

/** The caller as a Cedar entity, built once per frozen Principal (and frozen itself). */
export function principalEntity(p: Principal): EntityJson {
  if (!Object.isFrozen(p) || !Object.isFrozen(p.claims)) return buildPrincipalEntity(p);
  let entity = principalEntities.get(p);
  if (!entity) {
    entity = deepFreeze(buildPrincipalEntity(p));
    principalEntities.set(p, entity);
  }
  return entity;
}

function buildPrincipalEntity(p: Principal): EntityJson {
  const parents: { type: string; id: string }[] = [];
  if (p.workload) parents.push({ type: 'Workload', id: p.workload });
  if (p.user) parents.push({ type: 'User', id: p.user });
  for (const key of ['groups', 'roles']) {
    const list = p.claims[key];
    if (Array.isArray(list))
      for (const g of list) if (typeof g === 'string') parents.push({ type: 'Group', id: g });
  }
  return {
    uid: { type: 'Caller', id: p.id },
    attrs: {
      id: p.id,
      authMethod: p.authMethod,
      authenticated: p.authMethod !== 'none',
      workload: p.workload ?? '',
      user: p.user ?? '',
      issuer: p.issuer ?? '',
      scopes: [...p.scopes],
      reason: p.reason ?? '',
    },
    parents,
    tags: claimTags(p.claims),
  };
}

/** Token claims as string tags (`principal.getTag("dept")`); non-strings as their JSON text. */
function claimTags(claims: Readonly<Record<string, unknown>>): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(claims).slice(0, MAX_TAGS)) {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    if (text !== undefined) tags[k] = text.slice(0, MAX_TAG_LENGTH);
  }
  return tags;
}

/** Per ToolDef object: the catalog replaces a tool's definition when it changes, never edits it. */
const toolEntities = new WeakMap<ToolDef, EntityJson>();

function toolEntity(tool: ToolDef): EntityJson {
  let entity = toolEntities.get(tool);
  if (!entity) {
    entity = deepFreeze({
      uid: { type: 'Tool', id: tool.name },
      attrs: {
        server: tool.upstream,
        tier: tool.tier,
        egress: tool.egress,
        annotations: { ...tool.annotations },
      },
      parents: [{ type: 'Server', id: tool.upstream }],
    });
    toolEntities.set(tool, entity);
  }
  return entity;
}

function resourceEntity(t: Target): EntityJson {
  const server = (id: string) => [{ type: 'Server', id }];
  switch (t.kind) {
    case 'tool':
      return toolEntity(t.tool);
    case 'resource':
      return {
        uid: { type: 'Resource', id: t.uri },
        attrs: { server: t.server, tier: 'read' },
        parents: server(t.server),
      };
    case 'prompt':
      return {
        uid: { type: 'Prompt', id: t.name },
        attrs: { server: t.server, tier: 'read' },
        parents: server(t.server),
      };
    case 'server':
      return { uid: { type: 'Server', id: t.server }, attrs: {}, parents: [] };
  }
}

function contextOf(f: CallFacts): Record<string, unknown> {
  return {
    method: f.method,
    reason: f.reason,
    risk: riskOf(f),
    time: timeContext(f.now, f.utcOffsetMinutes),
    network: networkContext(f.network),
    session: {
      callsLastMinute: f.session.callsLastMinute,
      // Shared, not copied: session facts hand out a list nobody edits, and it can hold a thousand tools.
      toolsUsed: f.session.toolsUsed,
      sensitiveRead: f.session.sensitiveRead,
      tainted: f.session.tainted,
    },
    approval: { ...f.approval },
    request: { signed: f.request.signed },
    detected: { secrets: f.detected.secrets, pii: f.detected.pii },
    input: f.input,
  };
}

/** `context.time`: epoch seconds, and the hour, minute and weekday on the policy's clock. */
export function timeContext(now: number, utcOffsetMinutes: number): Record<string, number> {
  const local = new Date(now + utcOffsetMinutes * 60_000);
  return {
    now: Math.floor(now / 1000),
    hour: local.getUTCHours(),
    minute: local.getUTCMinutes(),
    weekday: local.getUTCDay(),
  };
}

/** `context.network`: the peer address as a Cedar `ipaddr` (0.0.0.0 when it is not an IP). */
export function networkContext(network: { address: string; transport: string }): Record<string, unknown> {
  return {
    address: { __extn: { fn: 'ip', arg: isIP(network.address) ? network.address : '0.0.0.0' } },
    transport: network.transport,
  };
}

/**
 * A simple additive score (0–100) until a real risk engine exists: unidentified
 * caller, no declared reason, a caller that has read sensitive data lately, a tool
 * that writes or reaches out. Policies compare `context.risk` against a threshold.
 */
export function riskOf(f: CallFacts): number {
  let risk = 0;
  if (f.principal.authMethod === 'none') risk += 40;
  if (f.reason === '') risk += 20;
  if (f.session.sensitiveRead) risk += 20;
  if (f.target.kind === 'tool' && (f.target.tool.tier === 'write' || f.target.tool.egress)) risk += 20;
  return Math.min(risk, 100);
}

import type { Catalog, ToolDef } from './catalog.ts';
import { schemaType } from './cedar-types.ts';

/** Action ids: one per MCP method family; each tool gets its own member of `tools/call` (typed input). */
export const ACTION = {
  toolsCall: 'tools/call',
  resourcesRead: 'resources/read',
  resourcesSubscribe: 'resources/subscribe',
  resourcesUnsubscribe: 'resources/unsubscribe',
  promptsGet: 'prompts/get',
  completion: 'completion/complete',
  other: 'mcp/other',
} as const;

export const toolAction = (tool: string): string => `${ACTION.toolsCall}:${tool}`;

/** The admin API's actions on held calls' approvals: the resource is an `Approval` (the queue, to list). */
export const ADMIN_ACTION = {
  list: 'approvals/list',
  show: 'approvals/show',
  approve: 'approvals/approve',
  deny: 'approvals/deny',
} as const;

export type AdminAction = (typeof ADMIN_ACTION)[keyof typeof ADMIN_ACTION];

/**
 * The role the gateway gives a caller that `approvals.approvers` names: only
 * config grants it (a token's `roles` claim makes `Group`s), and only an
 * admin-API request carries it.
 */
export const APPROVER_ROLE = { type: 'Role', id: 'approver' } as const;

/** The one queue of approvals, the resource of `approvals/list`. */
export const APPROVAL_QUEUE = { type: 'ApprovalQueue', id: 'approvals' } as const;

const str = { type: 'String' } as const;
const long = { type: 'Long' } as const;
const bool = { type: 'Boolean' } as const;
const strings = { type: 'Set', element: str } as const;
const req = <T extends object>(t: T) => ({ ...t, required: true });

/** What every action's context holds besides `input`. */
const COMMON_CONTEXT = {
  method: req(str),
  reason: req(str),
  risk: req(long),
  time: req({
    type: 'Record',
    attributes: { now: req(long), hour: req(long), minute: req(long), weekday: req(long) },
  }),
  network: req({
    type: 'Record',
    attributes: { address: req({ type: 'Extension', name: 'ipaddr' }), transport: req(str) },
  }),
  session: req({
    type: 'Record',
    attributes: {
      callsLastMinute: req(long),
      toolsUsed: req(strings),
      sensitiveRead: req(bool),
      tainted: req(bool),
    },
  }),
  approval: req({ type: 'Record', attributes: { granted: req(bool), breakGlass: req(bool) } }),
  /** The caller signed the request with a key bound to it, and the signature held. */
  request: req({ type: 'Record', attributes: { signed: req(bool) } }),
  /** Type names the detectors found in the arguments (`aws-access-token`, `email`, …). */
  detected: req({ type: 'Record', attributes: { secrets: req(strings), pii: req(strings) } }),
};

const context = (input: unknown) => ({
  type: 'Record',
  attributes: { ...COMMON_CONTEXT, input: { ...(input as object), required: true } },
});
const EMPTY_INPUT = { type: 'Record', attributes: {} };
const annotations = {
  type: 'Record',
  attributes: {
    readOnlyHint: req(bool),
    destructiveHint: req(bool),
    idempotentHint: req(bool),
    openWorldHint: req(bool),
  },
};

const ENTITY_TYPES = {
  Caller: {
    memberOfTypes: ['Group', 'Workload', 'User', 'Role'],
    shape: {
      type: 'Record',
      attributes: {
        id: req(str),
        authMethod: req(str),
        authenticated: req(bool),
        workload: req(str),
        user: req(str),
        issuer: req(str),
        scopes: req(strings),
        reason: req(str),
      },
    },
    tags: str,
  },
  Group: {},
  Workload: {},
  User: {},
  Role: {},
  Server: {},
  Tool: {
    memberOfTypes: ['Server'],
    shape: {
      type: 'Record',
      attributes: { server: req(str), tier: req(str), egress: req(bool), annotations: req(annotations) },
    },
  },
  Resource: {
    memberOfTypes: ['Server'],
    shape: { type: 'Record', attributes: { server: req(str), tier: req(str) } },
  },
  Prompt: {
    memberOfTypes: ['Server'],
    shape: { type: 'Record', attributes: { server: req(str), tier: req(str) } },
  },
  /** A held call's approval: its tool, the caller's principal id, and how many approvers it needs. */
  Approval: {
    shape: { type: 'Record', attributes: { tool: req(str), principal: req(str), required: req(long) } },
  },
  ApprovalQueue: {},
};

const applies = (resourceTypes: string[], input: unknown = EMPTY_INPUT) => ({
  appliesTo: { principalTypes: ['Caller'], resourceTypes, context: context(input) },
});

/** The Cedar schema (JSON form) for these tools (the catalog's, by default): typed `context.input` per tool. */
export function generateSchema(tools: Catalog | readonly ToolDef[]): Record<string, unknown> {
  const actions: Record<string, unknown> = {
    [ACTION.toolsCall]: {},
    [ACTION.resourcesRead]: applies(['Resource']),
    [ACTION.resourcesSubscribe]: applies(['Resource']),
    [ACTION.resourcesUnsubscribe]: applies(['Resource']),
    [ACTION.promptsGet]: applies(['Prompt']),
    [ACTION.completion]: applies(['Server']),
    [ACTION.other]: applies(['Server']),
    [ADMIN_ACTION.list]: applies([APPROVAL_QUEUE.type]),
    [ADMIN_ACTION.show]: applies(['Approval']),
    [ADMIN_ACTION.approve]: applies(['Approval']),
    [ADMIN_ACTION.deny]: applies(['Approval']),
  };
  for (const tool of Array.isArray(tools) ? tools : (tools as Catalog).allTools()) {
    actions[toolAction(tool.name)] = {
      memberOf: [{ id: ACTION.toolsCall }],
      ...applies(['Tool'], schemaType(tool.input)),
    };
  }
  return { '': { entityTypes: ENTITY_TYPES, actions } };
}

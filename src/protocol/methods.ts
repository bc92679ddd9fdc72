/** The MCP requests the gateway answers itself and then filters item by item. */
export type ListMethod = 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list';

/** A list result: where its items are, what each is named by, and what a caller does with one. */
export interface ListSpec {
  /** The result field holding the items. */
  readonly key: string;
  /** The server capability that says an upstream has such a list. */
  readonly capability: string;
  /** Names are prefixed with the upstream's (tools, prompts); URIs are not. */
  readonly rename: boolean;
  readonly idField: string;
  /** The call an item is for: policy shows an item when the caller could make it. */
  readonly callMethod: 'tools/call' | 'prompts/get' | 'resources/read';
}

export interface MethodSpec {
  /**
   * `legacy`: removed in the 2026-07-28 era (a modern client gets -32601);
   * `modern`: new in it; `both`: either era.
   */
  readonly era: 'legacy' | 'modern' | 'both';
  /** `gateway`: answered by the gateway itself; `upstream`: routed to the upstream that owns the target. */
  readonly answeredBy: 'gateway' | 'upstream';
  /** The string parameter naming the one tool, prompt or resource the request targets (`ref`: completion's reference). */
  readonly target?: { readonly kind: 'tool' | 'prompt' | 'resource'; readonly param: 'name' | 'uri' } | 'ref';
  /** `params.arguments`, when present, must be an object. */
  readonly arguments?: true;
  /** The target travels in the `Mcp-Name` header too (2026-07-28 over HTTP). */
  readonly nameHeader?: true;
  /** The result carries cache hints in the modern era. */
  readonly cacheable?: true;
  /**
   * The Cedar action: `own`, the method itself; `per-tool`, each tool its own
   * member of `tools/call`; a method without one is decided as `mcp/other`.
   */
  readonly action?: 'own' | 'per-tool';
  readonly list?: ListSpec;
}

/** Every MCP request method the gateway knows; any other is relayed (one upstream) or refused. */
export const METHODS = {
  initialize: { era: 'legacy', answeredBy: 'gateway' },
  ping: { era: 'legacy', answeredBy: 'gateway' },
  'server/discover': { era: 'both', answeredBy: 'gateway', cacheable: true },
  'logging/setLevel': { era: 'legacy', answeredBy: 'gateway' },
  'subscriptions/listen': { era: 'modern', answeredBy: 'gateway' },
  'tools/list': {
    era: 'both',
    answeredBy: 'gateway',
    cacheable: true,
    list: { key: 'tools', capability: 'tools', rename: true, idField: 'name', callMethod: 'tools/call' },
  },
  'prompts/list': {
    era: 'both',
    answeredBy: 'gateway',
    cacheable: true,
    list: { key: 'prompts', capability: 'prompts', rename: true, idField: 'name', callMethod: 'prompts/get' },
  },
  'resources/list': {
    era: 'both',
    answeredBy: 'gateway',
    cacheable: true,
    list: {
      key: 'resources',
      capability: 'resources',
      rename: false,
      idField: 'uri',
      callMethod: 'resources/read',
    },
  },
  'resources/templates/list': {
    era: 'both',
    answeredBy: 'gateway',
    cacheable: true,
    list: {
      key: 'resourceTemplates',
      capability: 'resources',
      rename: false,
      idField: 'uriTemplate',
      callMethod: 'resources/read',
    },
  },
  'tools/call': {
    era: 'both',
    answeredBy: 'upstream',
    target: { kind: 'tool', param: 'name' },
    arguments: true,
    nameHeader: true,
    action: 'per-tool',
  },
  'prompts/get': {
    era: 'both',
    answeredBy: 'upstream',
    target: { kind: 'prompt', param: 'name' },
    arguments: true,
    nameHeader: true,
    action: 'own',
  },
  'resources/read': {
    era: 'both',
    answeredBy: 'upstream',
    target: { kind: 'resource', param: 'uri' },
    nameHeader: true,
    cacheable: true,
    action: 'own',
  },
  'resources/subscribe': {
    era: 'legacy',
    answeredBy: 'upstream',
    target: { kind: 'resource', param: 'uri' },
    action: 'own',
  },
  'resources/unsubscribe': {
    era: 'legacy',
    answeredBy: 'upstream',
    target: { kind: 'resource', param: 'uri' },
    action: 'own',
  },
  'completion/complete': { era: 'both', answeredBy: 'upstream', target: 'ref', action: 'own' },
} as const satisfies Record<string, MethodSpec>;

export type KnownMethod = keyof typeof METHODS;

/** The row for a method, or undefined for one the gateway does not know (`toString` included). */
export function methodSpec(method: string): MethodSpec | undefined {
  return Object.hasOwn(METHODS, method) ? METHODS[method as KnownMethod] : undefined;
}

export const isListMethod = (method: string): method is ListMethod => methodSpec(method)?.list !== undefined;

export function listSpec(method: ListMethod): ListSpec {
  return METHODS[method].list;
}

/** The string parameter naming a method's one target (`name`, `uri`), if it has one. */
export function targetParam(method: string): 'name' | 'uri' | undefined {
  const target = methodSpec(method)?.target;
  return typeof target === 'object' ? target.param : undefined;
}

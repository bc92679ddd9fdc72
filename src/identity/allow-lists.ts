import { methodNotFound, unknownTarget } from '../errors.ts';
import { isObject, type JsonObject } from '../jsonrpc.ts';
import { methodSpec } from '../protocol/methods.ts';

/**
 * What a token that names what it allows may reach. Every kind it does not
 * name is empty: a token naming only tools reaches no resource and no prompt.
 * Tools are exact exposed names; prompts (exposed names) and resources (URIs)
 * may use `*`, which matches any run of characters.
 */
export interface AllowLists {
  readonly tools: readonly string[];
  readonly prompts: readonly string[];
  readonly resources: readonly string[];
}

export const ALLOW_CLAIMS = {
  tools: 'allowed_tools',
  prompts: 'allowed_prompts',
  resources: 'allowed_resources',
} as const;

/**
 * The allow lists a token's claims carry: undefined when it carries none of
 * them, `invalid` when one is not an array of strings.
 */
export function allowListsOf(claims: Record<string, unknown>): AllowLists | undefined | 'invalid' {
  const lists: Record<keyof AllowLists, string[]> = { tools: [], prompts: [], resources: [] };
  let named = false;
  for (const kind of Object.keys(ALLOW_CLAIMS) as (keyof AllowLists)[]) {
    const value = claims[ALLOW_CLAIMS[kind]];
    if (value === undefined) continue;
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return 'invalid';
    lists[kind] = value as string[];
    named = true;
  }
  return named ? lists : undefined;
}

export const allowsTool = (a: AllowLists, name: string): boolean => a.tools.includes(name);
export const allowsPrompt = (a: AllowLists, name: string): boolean => a.prompts.some((p) => matches(p, name));
/** A resource URI, or a URI template's text (its `{…}` parts are matched like any other characters). */
export const allowsResource = (a: AllowLists, uri: string): boolean =>
  a.resources.some((p) => matches(p, uri));

/** Whether a listed item (tool or prompt name, resource URI or template) stays in the caller's list. */
export function allowsListed(a: AllowLists, method: string, id: unknown): boolean {
  if (typeof id !== 'string') return false;
  if (method === 'tools/list') return allowsTool(a, id);
  if (method === 'prompts/list') return allowsPrompt(a, id);
  if (method === 'resources/list' || method === 'resources/templates/list') return allowsResource(a, id);
  return false;
}

/**
 * Throws what a request outside the allow lists gets: the same answer as a
 * target that does not exist. Whatever kind of request the lists do not cover
 * is refused as an unknown method.
 */
export function checkAllowLists(a: AllowLists, method: string, params: JsonObject | undefined): void {
  const p = params ?? {};
  const ref = isObject(p.ref) ? p.ref : {};
  switch (method) {
    case 'tools/call':
      if (!allowsTool(a, String(p.name))) throw unknownTarget('tool', String(p.name));
      return;
    case 'prompts/get':
      if (!allowsPrompt(a, String(p.name))) throw unknownTarget('prompt', String(p.name));
      return;
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      if (!allowsResource(a, String(p.uri))) throw unknownTarget('resource', String(p.uri));
      return;
    case 'completion/complete':
      if (ref.type === 'ref/prompt' && allowsPrompt(a, String(ref.name))) return;
      if (ref.type === 'ref/resource' && allowsResource(a, String(ref.uri))) return;
      throw unknownTarget(ref.type === 'ref/resource' ? 'resource' : 'prompt', String(ref.name ?? ref.uri));
    case 'subscriptions/listen':
      for (const uri of listenedUris(p)) if (!allowsResource(a, uri)) throw unknownTarget('resource', uri);
      return;
    default:
      // Methods the gateway answers itself pass; lists among them are filtered item by item.
      if (methodSpec(method)?.answeredBy !== 'gateway') throw methodNotFound(method);
  }
}

function listenedUris(params: JsonObject): string[] {
  const wanted = isObject(params.notifications) ? params.notifications.resourceSubscriptions : undefined;
  // Anything but an array of strings is refused by validation before it is used.
  return Array.isArray(wanted) ? wanted.filter((u): u is string => typeof u === 'string') : [];
}

/** `*` matches any run of characters; in time linear in practice, quadratic at worst (no regular expression). */
function matches(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (pattern[p] === '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.length && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (star >= 0) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
